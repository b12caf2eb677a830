#!/usr/bin/env bash
# Create (or update) the "amlfw reconciler" custom role and assign it to the identity amlfw runs as.
#
#   PRINCIPAL_ID=<object id of the managed identity or service principal> \
#   SCOPES="/subscriptions/<sub-a> /subscriptions/<sub-b>" \
#   deploy/azure/assign-role.sh
#
# SCOPES: where the role applies; one subscription per fleet subscription is simplest. A tighter choice is
# the resource groups holding the policies, route tables and IP groups, plus a subscription-level
# assignment for Microsoft.Resources/subscriptions/providers/read (pre-flight provider check).
# The role's assignable scopes are set to the subscriptions of SCOPES. Needs: az (logged in), python3.
set -euo pipefail

: "${PRINCIPAL_ID:?set PRINCIPAL_ID to the object id of the identity amlfw runs as}"
: "${SCOPES:?set SCOPES to the subscription or resource group ids to assign the role at}"
PRINCIPAL_TYPE="${PRINCIPAL_TYPE:-ServicePrincipal}"   # managed identities are service principals too
ROLE_FILE="$(cd "$(dirname "$0")" && pwd)/amlfw-role.json"
ROLE_NAME="amlfw reconciler"

definition="$(mktemp)"
trap 'rm -f "$definition"' EXIT
# shellcheck disable=SC2086 # SCOPES is a space-separated list on purpose
python3 - "$ROLE_FILE" "$definition" $SCOPES <<'PY'
import json, sys
role_file, out, *scopes = sys.argv[1:]
role = json.load(open(role_file))
role["AssignableScopes"] = sorted({"/".join(s.rstrip("/").split("/")[:3]) for s in scopes})
json.dump(role, open(out, "w"), indent=2)
PY

if az role definition list --custom-role-only true --name "$ROLE_NAME" --query "[0].name" -o tsv | grep -q .; then
    az role definition update --role-definition "@$definition" --output none
else
    az role definition create --role-definition "@$definition" --output none
fi

for scope in $SCOPES; do
    # a new custom role can take a minute to replicate: retry the assignment a few times
    for attempt in 1 2 3 4 5 6; do
        if az role assignment create --assignee-object-id "$PRINCIPAL_ID" \
                --assignee-principal-type "$PRINCIPAL_TYPE" --role "$ROLE_NAME" --scope "$scope" --output none; then
            echo "assigned \"$ROLE_NAME\" at $scope"
            break
        fi
        [ "$attempt" = 6 ] && exit 1
        sleep 20
    done
done
