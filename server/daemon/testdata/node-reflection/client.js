// A gRPC client in another language that knows encryptiond only through
// server reflection, as a new Node user would write it with
// grpc-js-reflection-client and @grpc/grpc-js: it loads the service's
// descriptors from the server, builds a client from them and makes one
// GetEncryptionAtRest call.
//
// Usage: node client.js ADDRESS GROUP_ID
//
// It prints one line of JSON and exits 0 when the call completed:
// {"response": {...}} with the answer (proto field names, unset fields left
// out), or {"error": {"code": N, "details": "..."}} with the status the
// server answered. Anything else (reflection or descriptor loading failed)
// exits 1 with the error on stderr.
'use strict';

const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

const service = 'atlas.encryption.v1.EncryptionService';
const timeoutMs = 20000;

async function main(address, groupId) {
  const credentials = grpc.credentials.createInsecure();
  const deadline = () => ({ deadline: Date.now() + timeoutMs });

  const reflection = new GrpcReflection(address, credentials);
  const descriptor = await reflection.getDescriptorBySymbol(service, new grpc.Metadata(), deadline());
  const pkg = descriptor.getPackageObject({ keepCase: true, enums: String, longs: String });
  const Client = service.split('.').reduce((ns, name) => ns?.[name], pkg);
  if (typeof Client !== 'function') {
    throw new Error(`reflection did not describe ${service}`);
  }

  const client = new Client(address, credentials);
  try {
    return await new Promise((resolve) => {
      client.GetEncryptionAtRest({ group_id: groupId }, deadline(), (err, response) => {
        resolve(err ? { error: { code: err.code, details: err.details } } : { response });
      });
    });
  } finally {
    client.close();
  }
}

const [address, groupId] = process.argv.slice(2);
if (!address || groupId === undefined) {
  console.error('usage: node client.js ADDRESS GROUP_ID');
  process.exit(2);
}
main(address, groupId).then(
  (result) => {
    console.log(JSON.stringify(result));
    // The reflection client offers no way to close its channel.
    process.exit(0);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
