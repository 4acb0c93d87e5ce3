"""An unmodified botocore client reading credentials from imdsd.

Run with only AWS_EC2_METADATA_SERVICE_ENDPOINT (and the moto STS endpoint
for the GetCallerIdentity check) in the environment. Prints one JSON line:
how botocore found the credentials and who STS says they are.
"""
import json

import botocore.session

session = botocore.session.get_session()
creds = session.get_credentials()
if creds is None:
    raise SystemExit("botocore found no credentials")
frozen = creds.get_frozen_credentials()
sts = session.create_client("sts")
identity = sts.get_caller_identity()
print(json.dumps({
    "method": creds.method,
    "access_key": frozen.access_key,
    "has_token": bool(frozen.token),
    "arn": identity["Arn"],
}))
