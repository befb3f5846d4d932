package server

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/encryptiond/encryptiond/atlas"
	encryptionv1 "github.com/encryptiond/encryptiond/gen/atlas/encryption/v1"
	"github.com/encryptiond/encryptiond/server/paging"
)

// TestProviderClouds holds the provider table's clouds to CloudProvider:
// every value but the zero one belongs to exactly one provider, spelled as
// Atlas spells it, and a provider with private endpoints has Atlas's
// regions for them.
func TestProviderClouds(t *testing.T) {
	t.Parallel()
	values := encryptionv1.CloudProvider(0).Descriptor().Values()
	for i := range values.Len() {
		v := encryptionv1.CloudProvider(values.Get(i).Number())
		var owners []string
		for _, p := range providers {
			if p.cloud == v {
				owners = append(owners, p.title)
			}
		}
		want := 1
		if v == encryptionv1.CloudProvider_CLOUD_PROVIDER_UNSPECIFIED {
			want = 0
		}
		if len(owners) != want {
			t.Errorf("CloudProvider %s belongs to providers %v, want %d", v, owners, want)
		}
	}
	for _, p := range providers {
		if p.hasEndpoints() && len(p.endpointRegions) == 0 {
			t.Errorf("%s has private endpoints but no regions", p.title)
		}
	}
	if got := []string{awsKMS.cloud.String(), azureKeyVault.cloud.String()}; !cmp.Equal(got, []string{atlas.CloudProviderAWS, atlas.CloudProviderAzure}) {
		t.Errorf("clouds of AWS KMS and Azure Key Vault = %v, want Atlas's spelling", got)
	}
	if googleCloudKMS.hasEndpoints() {
		t.Errorf("Google Cloud KMS has private endpoints in the table; Atlas offers none")
	}
}

var (
	azureEnabled = atlas.EncryptionAtRest{AzureKeyVault: &atlas.AzureKeyVault{
		Enabled: boolp(true), Valid: boolp(true), AzureEnvironment: strp("AZURE"), KeyVaultName: strp("vault"),
		ResourceGroupName: strp("rg"), SubscriptionID: strp("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
		KeyIdentifier: strp("https://vault.vault.azure.net/keys/key/1"), RoleID: strp(roleID),
	}}
	azureEndpoint = atlas.PrivateEndpoint{ID: "aaaaaaaaaaaaaaaaaaaaaaaa", CloudProvider: "AZURE", RegionName: "US_EAST_2", Status: atlas.EndpointActive}
	awsEndpoint   = atlas.PrivateEndpoint{ID: "bbbbbbbbbbbbbbbbbbbbbbbb", CloudProvider: "AWS", RegionName: "US_EAST_1", Status: atlas.EndpointActive}
)

// TestAzureFieldsFixedWhileEndpoints checks the special rule of Azure Key
// Vault: keyVaultName, resourceGroupName and subscriptionID cannot change
// while the project has Azure private endpoints that are not DELETING, and
// the endpoints are listed only when a request carries one of them.
func TestAzureFieldsFixedWhileEndpoints(t *testing.T) {
	t.Parallel()
	deleting := azureEndpoint
	deleting.Status = atlas.EndpointDeleting
	tests := []struct {
		name       string
		body       string
		endpoints  []atlas.PrivateEndpoint
		wantFields []string
		wantLists  int
		wantPatch  bool
	}{
		{
			name:      "one field per change",
			body:      `{"azureKeyVault": {"keyVaultName": "other", "resourceGroupName": "rg2", "subscriptionID": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}}`,
			endpoints: []atlas.PrivateEndpoint{azureEndpoint, awsEndpoint},
			// subscriptionID is set to the value Atlas has: not a change.
			wantFields: []string{"config.azure_key_vault.key_vault_name", "config.azure_key_vault.resource_group_name"},
			wantLists:  1,
		},
		{
			name:      "endpoints that are DELETING do not count",
			body:      `{"azureKeyVault": {"keyVaultName": "other"}}`,
			endpoints: []atlas.PrivateEndpoint{deleting},
			wantLists: 1, wantPatch: true,
		},
		{
			name:      "AWS endpoints do not count",
			body:      `{"azureKeyVault": {"keyVaultName": "other"}}`,
			endpoints: []atlas.PrivateEndpoint{awsEndpoint},
			wantLists: 1, wantPatch: true,
		},
		{
			name:      "other fields need no list",
			body:      `{"azureKeyVault": {"keyIdentifier": "https://vault.vault.azure.net/keys/key/2"}}`,
			endpoints: []atlas.PrivateEndpoint{azureEndpoint},
			wantLists: 0, wantPatch: true,
		},
		{
			name:      "a disable needs no list",
			body:      `{"azureKeyVault": {"enabled": false}}`,
			endpoints: []atlas.PrivateEndpoint{azureEndpoint},
			wantLists: 0, wantPatch: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeAtlas{state: azureEnabled, endpoints: tt.endpoints}
			_, err := New(fake).UpdateEncryptionAtRest(t.Context(), updateRequest(t, testGroup, tt.body, false))
			if diff := cmp.Diff(tt.wantFields, violationsOf(err)); diff != "" {
				t.Errorf("Update(%s) field violations (-want +got):\n%s\nerror: %v", tt.body, diff, err)
			}
			if tt.wantFields != nil && (status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), azureEndpoint.ID)) {
				t.Errorf("Update(%s) = %v, want INVALID_ARGUMENT naming the endpoint", tt.body, err)
			}
			_, patches := fake.calls()
			if got := len(patches) == 1; got != tt.wantPatch {
				t.Errorf("Update(%s) sent %v, want a PATCH: %v", tt.body, patches, tt.wantPatch)
			}
			if fake.lists != tt.wantLists {
				t.Errorf("Update(%s) listed the endpoints %d times, want %d", tt.body, fake.lists, tt.wantLists)
			}
		})
	}
}

// TestPrivateEndpointRefusals checks the rules every private-endpoint
// request is held to before anything is sent to Atlas.
func TestPrivateEndpointRefusals(t *testing.T) {
	t.Parallel()
	const id = "0123456789abcdef01234567"
	aws, azure, gcp := encryptionv1.CloudProvider_AWS, encryptionv1.CloudProvider_AZURE, encryptionv1.CloudProvider_GCP
	create := func(cloud encryptionv1.CloudProvider, region string) func(*Server) error {
		return func(s *Server) error {
			_, err := s.CreatePrivateEndpoint(t.Context(), &encryptionv1.CreatePrivateEndpointRequest{GroupId: testGroup, CloudProvider: cloud, PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: region}})
			return err
		}
	}
	list := func(size int32, token string) func(*Server) error {
		return func(s *Server) error {
			_, err := s.ListPrivateEndpoints(t.Context(), &encryptionv1.ListPrivateEndpointsRequest{GroupId: testGroup, CloudProvider: aws, PageSize: size, PageToken: token})
			return err
		}
	}
	tests := []struct {
		name       string
		call       func(*Server) error
		wantFields []string
		wantText   string
	}{
		{"GCP", create(gcp, "US_EAST_1"), []string{"cloud_provider"}, "Atlas offers no private endpoints for Google Cloud KMS"},
		{"no provider", create(encryptionv1.CloudProvider_CLOUD_PROVIDER_UNSPECIFIED, "US_EAST_1"), []string{"cloud_provider"}, "AWS or AZURE"},
		{"an Azure region for AWS", create(aws, "EUROPE_WEST"), []string{"private_endpoint.region_name"}, "US_EAST_1"},
		{"an AWS region for Azure", create(azure, "EU_WEST_1"), []string{"private_endpoint.region_name"}, "EUROPE_WEST"},
		{"no region", create(azure, ""), []string{"private_endpoint.region_name"}, "MISSING_ATTRIBUTE"},
		{"endpoint id", func(s *Server) error {
			_, err := s.GetPrivateEndpoint(t.Context(), &encryptionv1.GetPrivateEndpointRequest{GroupId: testGroup, CloudProvider: aws, EndpointId: "ABC"})
			return err
		}, []string{"endpoint_id"}, "24 lowercase"},
		{"group id and endpoint id", func(s *Server) error {
			_, err := s.DeletePrivateEndpoint(t.Context(), &encryptionv1.DeletePrivateEndpointRequest{GroupId: "x", CloudProvider: gcp, EndpointId: id + "0"})
			return err
		}, []string{"group_id", "cloud_provider", "endpoint_id"}, ""},
		{"negative page size", list(-1, ""), []string{"page_size"}, ""},
		{"a page token of no one", list(0, "bm9wZQ"), []string{"page_token"}, "nextPageToken"},
		{"a page size other than the token's", list(7, paging.Token(paging.Page{Number: 2, Size: 5})), []string{"page_size"}, "stay 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeAtlas{}
			err := tt.call(New(fake))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.wantText) {
				t.Errorf("call = %v, want INVALID_ARGUMENT saying %q", err, tt.wantText)
			}
			if diff := cmp.Diff(tt.wantFields, violationsOf(err)); diff != "" {
				t.Errorf("field violations (-want +got):\n%s", diff)
			}
			if gets, patches := fake.calls(); gets != 0 || len(patches) != 0 || fake.lists != 0 {
				t.Errorf("refused call reached Atlas: %d gets, %d patches, %d lists", gets, len(patches), fake.lists)
			}
		})
	}
}

func TestListPrivateEndpointsPages(t *testing.T) {
	t.Parallel()
	fake := &fakeAtlas{endpoints: []atlas.PrivateEndpoint{azureEndpoint, awsEndpoint}}
	got, err := New(fake).ListPrivateEndpoints(t.Context(), &encryptionv1.ListPrivateEndpointsRequest{GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE})
	if err != nil {
		t.Fatal(err)
	}
	want := &encryptionv1.ListPrivateEndpointsResponse{
		PrivateEndpoints: []*encryptionv1.PrivateEndpoint{{Id: azureEndpoint.ID, CloudProvider: encryptionv1.CloudProvider_AZURE, RegionName: "US_EAST_2", Status: encryptionv1.PrivateEndpoint_ACTIVE}},
		TotalSize:        1,
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("ListPrivateEndpoints (-want +got):\n%s", diff)
	}
}

func TestPrivateEndpointsOf(t *testing.T) {
	t.Parallel()
	fake := &fakeAtlas{endpoints: []atlas.PrivateEndpoint{azureEndpoint, awsEndpoint}}
	s := New(fake)
	got, err := s.privateEndpointsOf(t.Context(), testGroup, azureKeyVault)
	if err != nil || len(got) != 1 || got[0].ID != azureEndpoint.ID {
		t.Errorf("privateEndpointsOf(Azure) = %v, %v; want the Azure endpoint", got, err)
	}
	if got, err := s.privateEndpointsOf(t.Context(), testGroup, googleCloudKMS); got != nil || err != nil || fake.lists != 1 {
		t.Errorf("privateEndpointsOf(GCP) = %v, %v after %d lists; want nothing, without asking Atlas", got, err, fake.lists)
	}
}

func TestDescribePrivateEndpointChanges(t *testing.T) {
	t.Parallel()
	create := DescribeCreatePrivateEndpoint(&encryptionv1.CreatePrivateEndpointRequest{
		GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_AZURE, ValidateOnly: true,
		PrivateEndpoint: &encryptionv1.PrivateEndpoint{RegionName: "EUROPE_WEST", Id: "ignored"},
	})
	want := Mutation{GroupID: testGroup, Provider: "azureKeyVault", Action: ActionCreatePrivateEndpoint, Fields: []string{"id", "regionName"}, ValidateOnly: true}
	if diff := cmp.Diff(want, create); diff != "" {
		t.Errorf("DescribeCreatePrivateEndpoint (-want +got):\n%s", diff)
	}
	del := DescribeDeletePrivateEndpoint(&encryptionv1.DeletePrivateEndpointRequest{GroupId: testGroup, CloudProvider: encryptionv1.CloudProvider_GCP, EndpointId: strings.Repeat("a", 100)})
	if del.Action != ActionDeletePrivateEndpoint || del.Provider != "googleCloudKms" || len(del.EndpointID) > maxAuditedID+len("…") {
		t.Errorf("DescribeDeletePrivateEndpoint = %+v, want the delete action, Google's name and the id cut short", del)
	}
}
