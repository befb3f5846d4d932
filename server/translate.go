package server

import (
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
)

// This file translates between the API's messages and Atlas's wire types.
// Presence carries over both ways: a field set in the request is set in the
// Atlas body, and nothing else is.

// patch returns the Atlas body for the request: its provider's document with
// exactly the fields the request sets. The body shares the request's values;
// neither is changed afterwards.
func (r *request) patch() *atlas.EncryptionAtRest {
	if r.disable {
		off := false
		switch r.provider {
		case awsKMS:
			return &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{Enabled: &off}}
		case azureKeyVault:
			return &atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{Enabled: &off}}
		default:
			return &atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{Enabled: &off}}
		}
	}
	switch m := r.msg.Interface().(type) {
	case *encryptionv1.AzureKeyVault:
		return &atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{
			Enabled:                  m.Enabled,
			AzureEnvironment:         m.AzureEnvironment,
			ClientID:                 m.ClientId,
			KeyIdentifier:            m.KeyIdentifier,
			KeyVaultName:             m.KeyVaultName,
			ResourceGroupName:        m.ResourceGroupName,
			RoleID:                   m.RoleId,
			Secret:                   m.Secret,
			SubscriptionID:           m.SubscriptionId,
			TenantID:                 m.TenantId,
			RequirePrivateNetworking: m.RequirePrivateNetworking,
		}}
	case *encryptionv1.GoogleCloudKms:
		return &atlas.EncryptionAtRest{GoogleCloudKMS: &atlas.GoogleCloudKMS{
			Enabled:              m.Enabled,
			KeyVersionResourceID: m.KeyVersionResourceId,
			ServiceAccountKey:    m.ServiceAccountKey,
			RoleID:               m.RoleId,
		}}
	default: // checkRequest admits only the three providers
		aws := r.msg.Interface().(*encryptionv1.AwsKms)
		return &atlas.EncryptionAtRest{AWSKMS: &atlas.AWSKMSConfiguration{
			Enabled:                  aws.Enabled,
			AccessKeyID:              aws.AccessKeyId,
			SecretAccessKey:          aws.SecretAccessKey,
			CustomerMasterKeyID:      aws.CustomerMasterKeyId,
			Region:                   aws.Region,
			RoleID:                   aws.RoleId,
			RequirePrivateNetworking: aws.RequirePrivateNetworking,
		}}
	}
}

// secrets returns the spellings of the secret values the request carries
// (atlas.SecretSpellings), to redact them from anything Atlas says back. The
// Atlas client already removes them from its errors; this is the second
// line, for every text the service builds from one.
func (r *request) secrets() []string {
	var values []string
	for _, fd := range r.set {
		if isSecret(fd) {
			values = append(values, r.msg.Get(fd).String())
		}
	}
	return atlas.SecretSpellings(values...)
}

// isSecret reports whether a field holds a secret: the proto marks those
// debug_redact.
func isSecret(fd protoreflect.FieldDescriptor) bool {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	return ok && opts.GetDebugRedact()
}

// applied returns the configuration as it would be after Atlas applied the
// request to current: what validate_only answers. Atlas has not checked a key
// it has not seen, so a provider that the request would enable reports
// valid=false until Atlas says otherwise.
func (r *request) applied(current *atlas.EncryptionAtRest) *atlas.EncryptionAtRest {
	next := *current
	off := false
	p := r.patch()
	switch r.provider {
	case awsKMS:
		cur := deref(current.AWSKMS)
		if r.disable {
			next.AWSKMS = &atlas.AWSKMSConfiguration{Enabled: &off, Valid: &off}
			break
		}
		if !providerEnabled(current, awsKMS) {
			cur = atlas.AWSKMSConfiguration{Valid: &off}
		}
		u := p.AWSKMS
		if u.RoleID != nil { // a switch to role-based access drops the static credentials
			cur.AccessKeyID = nil
		}
		cur.Enabled = or(u.Enabled, cur.Enabled)
		cur.AccessKeyID = or(u.AccessKeyID, cur.AccessKeyID)
		cur.CustomerMasterKeyID = or(u.CustomerMasterKeyID, cur.CustomerMasterKeyID)
		cur.Region = or(u.Region, cur.Region)
		cur.RequirePrivateNetworking = or(u.RequirePrivateNetworking, cur.RequirePrivateNetworking)
		cur.RoleID = nil // write-only: Atlas (v2) does not return it
		next.AWSKMS = &cur
	case azureKeyVault:
		cur := deref(current.AzureKeyVault)
		if r.disable {
			next.AzureKeyVault = &atlas.AzureKeyVault{Enabled: &off, Valid: &off}
			break
		}
		if !providerEnabled(current, azureKeyVault) {
			cur = atlas.AzureKeyVault{Valid: &off}
		}
		u := p.AzureKeyVault
		switch {
		case u.RoleID != nil: // a switch to role-based access drops the application
			cur.ClientID, cur.TenantID = nil, nil
		case u.ClientID != nil || u.TenantID != nil || u.Secret != nil:
			cur.RoleID = nil
		}
		cur.Enabled = or(u.Enabled, cur.Enabled)
		cur.AzureEnvironment = or(u.AzureEnvironment, cur.AzureEnvironment)
		cur.ClientID = or(u.ClientID, cur.ClientID)
		cur.KeyIdentifier = or(u.KeyIdentifier, cur.KeyIdentifier)
		cur.KeyVaultName = or(u.KeyVaultName, cur.KeyVaultName)
		cur.ResourceGroupName = or(u.ResourceGroupName, cur.ResourceGroupName)
		cur.RoleID = or(u.RoleID, cur.RoleID)
		cur.SubscriptionID = or(u.SubscriptionID, cur.SubscriptionID)
		cur.TenantID = or(u.TenantID, cur.TenantID)
		cur.RequirePrivateNetworking = or(u.RequirePrivateNetworking, cur.RequirePrivateNetworking)
		next.AzureKeyVault = &cur
	case googleCloudKMS:
		cur := deref(current.GoogleCloudKMS)
		if r.disable {
			next.GoogleCloudKMS = &atlas.GoogleCloudKMS{Enabled: &off, Valid: &off}
			break
		}
		if !providerEnabled(current, googleCloudKMS) {
			cur = atlas.GoogleCloudKMS{Valid: &off}
		}
		u := p.GoogleCloudKMS
		if u.ServiceAccountKey != nil { // only possible while no role is set; see checkState
			cur.RoleID = nil
		}
		cur.Enabled = or(u.Enabled, cur.Enabled)
		cur.KeyVersionResourceID = or(u.KeyVersionResourceID, cur.KeyVersionResourceID)
		cur.RoleID = or(u.RoleID, cur.RoleID)
		next.GoogleCloudKMS = &cur
	}
	return &next
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// or returns the update's value if it sets one, else the current one.
func or[T any](update, current *T) *T {
	if update != nil {
		return update
	}
	return current
}

// toProto converts Atlas's answer to the API's resource. It always carries
// all three providers with enabled and valid set, and it copies no secret:
// the output messages have no field for one.
func toProto(in *atlas.EncryptionAtRest) *encryptionv1.EncryptionAtRest {
	aws := deref(in.AWSKMS)
	az := deref(in.AzureKeyVault)
	gcp := deref(in.GoogleCloudKMS)
	return &encryptionv1.EncryptionAtRest{
		AwsKms: &encryptionv1.AwsKmsState{
			Enabled:                  boolOrFalse(aws.Enabled),
			Valid:                    boolOrFalse(aws.Valid),
			AccessKeyId:              aws.AccessKeyID,
			CustomerMasterKeyId:      aws.CustomerMasterKeyID,
			Region:                   aws.Region,
			RoleId:                   aws.RoleID,
			RequirePrivateNetworking: aws.RequirePrivateNetworking,
		},
		AzureKeyVault: &encryptionv1.AzureKeyVaultState{
			Enabled:                  boolOrFalse(az.Enabled),
			Valid:                    boolOrFalse(az.Valid),
			AzureEnvironment:         az.AzureEnvironment,
			ClientId:                 az.ClientID,
			KeyIdentifier:            az.KeyIdentifier,
			KeyVaultName:             az.KeyVaultName,
			ResourceGroupName:        az.ResourceGroupName,
			RoleId:                   az.RoleID,
			SubscriptionId:           az.SubscriptionID,
			TenantId:                 az.TenantID,
			RequirePrivateNetworking: az.RequirePrivateNetworking,
		},
		GoogleCloudKms: &encryptionv1.GoogleCloudKmsState{
			Enabled:              boolOrFalse(gcp.Enabled),
			Valid:                boolOrFalse(gcp.Valid),
			KeyVersionResourceId: gcp.KeyVersionResourceID,
			RoleId:               gcp.RoleID,
		},
		EnabledForSearchNodes: in.EnabledForSearchNodes,
	}
}

func boolOrFalse(b *bool) *bool {
	if b == nil {
		f := false
		return &f
	}
	return b
}
