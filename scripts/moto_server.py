"""The bundled emulator: moto's server, plus the Cognito Identity role calls
moto 5.2.5 lacks.

moto answers SetIdentityPoolRoles and GetIdentityPoolRoles with HTTP 500 ("not
implemented"), so an identity pool's roles could never be applied or read back
on the emulator. This adds the two calls with AWS's request and answer shapes:
the roles are stored on the pool as given and read back; like the rest of moto,
nothing checks that the roles exist or trust Cognito. A pool that does not
exist answers ResourceNotFoundException, as AWS does.

Usage is moto_server's: python scripts/moto_server.py -H 127.0.0.1 -p 5000
"""

import json
import sys

from moto.cognitoidentity.exceptions import ResourceNotFoundError
from moto.cognitoidentity.responses import CognitoIdentityResponse
from moto.server import main


def _pool(response, pool_id):
    pool = response.backend.identity_pools.get(pool_id)
    if pool is None:
        raise ResourceNotFoundError(pool_id)
    return pool


def set_identity_pool_roles(self):
    pool = _pool(self, self._get_param("IdentityPoolId"))
    pool.roles = dict(self._get_param("Roles") or {})
    pool.role_mappings = dict(self._get_param("RoleMappings") or {})
    return ""


def get_identity_pool_roles(self):
    pool_id = self._get_param("IdentityPoolId")
    pool = _pool(self, pool_id)
    answer = {"IdentityPoolId": pool_id, "Roles": getattr(pool, "roles", {})}
    if getattr(pool, "role_mappings", None):
        answer["RoleMappings"] = pool.role_mappings
    return json.dumps(answer)


CognitoIdentityResponse.set_identity_pool_roles = set_identity_pool_roles
CognitoIdentityResponse.get_identity_pool_roles = get_identity_pool_roles

if __name__ == "__main__":
    main(sys.argv[1:])
