// An unmodified AWS SDK for JavaScript v3 client: the default credential
// chain finds imdsd through AWS_EC2_METADATA_SERVICE_ENDPOINT alone, then
// GetCallerIdentity (against moto) proves who the credentials belong to.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";

const client = new STSClient({});
const creds = await client.config.credentials();
const identity = await client.send(new GetCallerIdentityCommand({}));
console.log(JSON.stringify({
  accessKeyId: creds.accessKeyId,
  hasToken: Boolean(creds.sessionToken),
  expiration: creds.expiration?.toISOString(),
  arn: identity.Arn,
}));
