"""Small valid wire bodies for tests (policies, rule collection groups, rules, routes)."""

from __future__ import annotations

from typing import Any

SUB = "11111111-2222-3333-4444-555555555555"
RG = "rg-amlfw"
POLICY = "fwp-amlfw"
LOCATION = "westus2"


def policy_body(tier: str = "Standard", *, dns_proxy: bool = True, tls_ca: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "sku": {"tier": tier},
        "threatIntelMode": "Alert",
        "dnsSettings": {"enableProxy": dns_proxy},
    }
    if tls_ca:
        properties["transportSecurity"] = {
            "certificateAuthority": {"name": "interCA", "keyVaultSecretId": "https://kv.vault.azure.net/secrets/ca"}
        }
    return {"location": LOCATION, "properties": properties}


def network_rule(name: str = "net-1", **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ruleType": "NetworkRule",
        "name": name,
        "ipProtocols": ["TCP"],
        "sourceAddresses": ["10.0.0.0/24"],
        "destinationAddresses": ["AzureMachineLearning"],
        "destinationPorts": ["443"],
    }
    rule.update(fields)
    return {key: value for key, value in rule.items() if value is not None}


def application_rule(name: str = "app-1", **fields: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "ruleType": "ApplicationRule",
        "name": name,
        "protocols": [{"protocolType": "Https", "port": 443}],
        "sourceAddresses": ["10.0.0.0/24"],
        "targetFqdns": ["*.api.azureml.ms"],
    }
    rule.update(fields)
    return {key: value for key, value in rule.items() if value is not None}


def filter_collection(
    name: str = "coll-1", rules: list[dict[str, Any]] | None = None, *, priority: int = 100, action: str = "Allow"
) -> dict[str, Any]:
    return {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": name,
        "priority": priority,
        "action": {"type": action},
        "rules": rules if rules is not None else [network_rule()],
    }


def group_body(collections: list[dict[str, Any]] | None = None, *, priority: int = 1000) -> dict[str, Any]:
    return {
        "properties": {
            "priority": priority,
            "ruleCollections": collections if collections is not None else [filter_collection()],
        }
    }


def route_body(
    prefix: str = "AzureMachineLearning", hop: str = "Internet", hop_ip: str | None = None
) -> dict[str, Any]:
    properties: dict[str, Any] = {"addressPrefix": prefix, "nextHopType": hop}
    if hop_ip is not None:
        properties["nextHopIpAddress"] = hop_ip
    return {"properties": properties}
