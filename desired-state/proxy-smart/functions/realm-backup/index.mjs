// Nightly Keycloak realm export: signs in to the admin API with the admin
// credentials read at run time from Secrets Manager, exports the realm
// (clients, groups and roles included) and writes it to S3 under a
// timestamped key. Node.js 22 on Lambda ships fetch and the AWS SDK v3.
import { S3Client, PutObjectCommand } from "@aws-sdk/client-s3";
import { SecretsManagerClient, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";

const { KEYCLOAK_URL, KEYCLOAK_REALM, KEYCLOAK_ADMIN_SECRET_ARN, BACKUP_BUCKET } = process.env;

const s3 = new S3Client({});
const secrets = new SecretsManagerClient({});

async function adminToken() {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: KEYCLOAK_ADMIN_SECRET_ARN }));
  const { username, password } = JSON.parse(out.SecretString);
  const res = await fetch(`${KEYCLOAK_URL}/realms/master/protocol/openid-connect/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "password", client_id: "admin-cli", username, password }),
  });
  if (!res.ok) throw new Error(`token request failed: HTTP ${res.status}`);
  return (await res.json()).access_token;
}

export const handler = async () => {
  const token = await adminToken();
  const url = `${KEYCLOAK_URL}/admin/realms/${encodeURIComponent(KEYCLOAK_REALM)}/partial-export` +
    "?exportClients=true&exportGroupsAndRoles=true";
  const res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`realm export failed: HTTP ${res.status}`);
  const body = await res.text();
  const key = `realm-exports/${KEYCLOAK_REALM}/${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  await s3.send(new PutObjectCommand({
    Bucket: BACKUP_BUCKET,
    Key: key,
    Body: body,
    ContentType: "application/json",
    ServerSideEncryption: "AES256",
  }));
  console.log(JSON.stringify({ exported: KEYCLOAK_REALM, bucket: BACKUP_BUCKET, key, bytes: body.length }));
  return { key };
};
