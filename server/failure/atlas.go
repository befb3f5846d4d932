package failure

import "google.golang.org/grpc/codes"

// AtlasCode is what encryptiond answers for one of Atlas's errorCodes: a
// gRPC code, and one sentence on what to do about it. The sentence never
// quotes a request value.
type AtlasCode struct {
	Code   codes.Code
	Remedy string
}

// AtlasCodes maps every errorCode Atlas documents for encryption at rest
// to its gRPC code and remedy. docs/ERRORS.md shows the same
// table; a test holds the two together. An errorCode not listed here falls
// back on its HTTP status (server/errors.go).
//
// Refusals of the request's own content are INVALID_ARGUMENT; refusals
// that depend on the state of something outside the request (a key that is
// disabled, expired or being deleted; clusters using a provider; a role not
// yet authorized) are FAILED_PRECONDITION; Atlas refusing this service's
// own credentials is INTERNAL, since the caller can do nothing about it.
var AtlasCodes = map[string]AtlasCode{
	// 400: the request
	"INVALID_ATTRIBUTE":                             {codes.InvalidArgument, "Correct the fields Atlas names and send the request again."},
	"MISSING_ATTRIBUTE":                             {codes.InvalidArgument, "Send the fields Atlas names: enabling a provider needs its whole document for one auth mode."},
	"INVALID_ENUM_VALUE":                            {codes.InvalidArgument, "Use one of the values Atlas accepts for the field it names."},
	"INVALID_JSON":                                  {codes.InvalidArgument, "Send one JSON object, spelled as Atlas's API spells it."},
	"VALIDATION_ERROR":                              {codes.InvalidArgument, "Correct the fields Atlas names and send the request again."},
	"AWS_KMS_REGION_NOT_SUPPORTED":                  {codes.InvalidArgument, "Use a region where Atlas supports AWS KMS: the region the key lives in."},
	"AZURE_KEY_VAULT_KEY_IDENTIFIER_INVALID_FORMAT": {codes.InvalidArgument, "Send keyIdentifier as the key's URL: https://<vault>.vault.azure.net/keys/<name>/<version>."},
	"ENCRYPTION_AT_REST_SETTINGS_INVALID":           {codes.InvalidArgument, "Atlas could not use the key with these settings: check the key, its region or vault, and the credentials together."},
	"INVALID_AWS_CREDENTIALS":                       {codes.InvalidArgument, "Check the IAM access key (accessKeyID and secretAccessKey), or that the Cloud Provider Access role (roleId) is authorized for this project."},
	"INVALID_AZURE_CREDENTIALS":                     {codes.InvalidArgument, "Check the Azure application (clientID, tenantID and secret), or that the Cloud Provider Access role (roleId) is authorized, and their access to the key vault."},
	"INVALID_GOOGLE_CLOUD_CREDENTIALS":              {codes.InvalidArgument, "Check the service account key, or that the Cloud Provider Access role (roleId) is authorized, and its roles on the key."},

	// 400: the key and its cloud, outside the request
	"NO_PERMISSION_TO_ENCRYPT_DECRYPT":                                {codes.FailedPrecondition, "Grant the credentials or role permission to encrypt and decrypt with the key, in the cloud provider's IAM, then try again."},
	"AWS_KMS_CUSTOMER_MASTER_KEY_NOT_ENABLED":                         {codes.FailedPrecondition, "Enable the customer master key in AWS KMS, then try again."},
	"AWS_KMS_CUSTOMER_MASTER_KEY_PENDING_DELETION":                    {codes.FailedPrecondition, "Cancel the key's scheduled deletion in AWS KMS, or send another customerMasterKeyID."},
	"AZURE_KEY_VAULT_KEY_NOT_FOUND":                                   {codes.FailedPrecondition, "Check that keyIdentifier names a key that exists in the vault and that the application or role can read it."},
	"AZURE_KEY_VAULT_KEY_EXPIRED":                                     {codes.FailedPrecondition, "Rotate the key in Azure Key Vault and send the new version's keyIdentifier."},
	"GOOGLE_CLOUD_KMS_KEY_VERSION_NOT_FOUND":                          {codes.FailedPrecondition, "Check that keyVersionResourceID names a key version that exists and that the service account or role can use."},
	"GOOGLE_CLOUD_KMS_KEY_VERSION_DISABLED":                           {codes.FailedPrecondition, "Enable the key version in Google Cloud KMS, or send another keyVersionResourceID."},
	"AWS_KMS_CREDENTIALS_AUTH_DEPRECATED":                             {codes.FailedPrecondition, "Atlas no longer accepts AWS access keys for this project: use a Cloud Provider Access role (roleId)."},
	"CANNOT_DISABLE_ENCRYPTION_AT_REST_WITH_BACKUP_COMPLIANCE_POLICY": {codes.FailedPrecondition, "A Backup Compliance Policy requires encryption at rest in this project: it stays enabled while the policy does."},
	"CANNOT_ASSUME_ROLE":                                              {codes.FailedPrecondition, "The Cloud Provider Access role may still be propagating, which takes minutes after it is authorized: check that it is authorized for this project (Atlas › Cloud Provider Access) and try again."},
	"CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED":                       {codes.FailedPrecondition, "Authorize the Cloud Provider Access role for this project (Atlas › Cloud Provider Access), allow a few minutes for it to propagate, and try again."},

	// 401 and 403: this service's own credentials
	"UNAUTHORIZED":                {codes.Internal, "The operator must check encryptiond's MONGODB_ATLAS_* credentials."},
	"USER_UNAUTHORIZED":           {codes.Internal, "The operator must give encryptiond's API key or service account a role in this project: Project Owner to change, Project Read Only to read."},
	"NOT_IN_GROUP":                {codes.Internal, "The operator must add encryptiond's API key or service account to this project."},
	"IP_ADDRESS_NOT_ON_WHITELIST": {codes.PermissionDenied, "The operator must add encryptiond's outbound address to the access list of its API key or service account."},
	"ACCESS_FORBIDDEN":            {codes.PermissionDenied, "The operator must give encryptiond's API key or service account the role this call needs in the project: Project Owner to change encryption at rest."},

	// 404
	"GROUP_NOT_FOUND":                   {codes.NotFound, "Check the project id (Atlas › Project Settings), and that encryptiond's credentials can see the project."},
	"RESOURCE_NOT_FOUND":                {codes.NotFound, "Check the ids in the request."},
	"AWS_CUSTOMER_MASTER_KEY_NOT_FOUND": {codes.FailedPrecondition, "Check that customerMasterKeyID names a key that exists in the region given and that the credentials or role can see it."},

	// 409
	"CANNOT_DISABLE_ENCRYPTION_AT_REST":         {codes.FailedPrecondition, "Set the encryptionAtRestProvider of the clusters that use the provider to NONE, or terminate them, then disable it again."},
	"CANNOT_CHANGE_ENCRYPTION_AT_REST_PROVIDER": {codes.FailedPrecondition, "Atlas does not allow this provider change now: let the clusters' pending changes finish, then try again."},
	"CANNOT_ROTATE_KEY_ENCRYPTION_DISABLED":     {codes.FailedPrecondition, "Enable the provider with its whole document before changing its key."},

	// 429 and 5xx
	"RATE_LIMITED_TOKEN_BUCKET": {codes.ResourceExhausted, "Wait for the delay in RetryInfo (Retry-After) before trying again."},
	"RATE_LIMITED":              {codes.ResourceExhausted, "Wait for the delay in RetryInfo (Retry-After) before trying again."},
	"UNEXPECTED_ERROR":          {codes.Unavailable, "Atlas failed: try again later, and after a change read the configuration first, since it may have been applied."},
}
