#!/usr/bin/env sh
# Make ./secrets for docker-compose.yml: a random PostgreSQL password and the URLs that use it.
# Run once from the repository root; it never overwrites a secret that exists.
set -eu
cd "$(dirname "$0")/.."
umask 077
mkdir -p secrets
if [ ! -s secrets/postgres_password ]; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > secrets/postgres_password
fi
password=$(cat secrets/postgres_password)
[ -s secrets/database_url ] \
    || echo "postgresql+psycopg://ridgerider:${password}@postgres:5432/ridgerider" > secrets/database_url
[ -s secrets/redis_url ] || echo "redis://redis:6379/0" > secrets/redis_url
[ -s secrets/ray_auth_token ] \
    || python3 -c 'import secrets; print(secrets.token_hex(32))' > secrets/ray_auth_token
echo "secrets/ ready (postgres_password, database_url, redis_url, ray_auth_token)"
