"""One test per validation rule: the swagger schema (400), then the documented service rules (an operation that
ends Failed, or 400 with ``sync_validation``), in ARM's error shape."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import ArmError, Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures
from tests.emulator.rawarm import ArmHttp
from tests.emulator.samples import (
    LOCATION,
    POLICY,
    RG,
    SUB,
    application_rule,
    filter_collection,
    group_body,
    network_rule,
    policy_body,
    route_body,
)

NetworkFactory = Callable[..., NetworkManagementClient]
IP_GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/ipGroups/ipg-compute"
PREMIUM = "fwp-premium"
PREMIUM_NO_TLS = "fwp-premium-no-tls"
NO_PROXY = "fwp-no-dns-proxy"
NO_PROXY_NOT_REQUIRED = "fwp-proxy-not-required"


@pytest.fixture
def policies(emulator: Emulator) -> None:
    emulator.add_resource_group(SUB, RG, LOCATION)
    emulator.put_policy(SUB, RG, POLICY, policy_body("Standard"))
    emulator.put_policy(SUB, RG, PREMIUM, policy_body("Premium", tls_ca=True))
    emulator.put_policy(SUB, RG, PREMIUM_NO_TLS, policy_body("Premium"))
    emulator.put_policy(SUB, RG, NO_PROXY, policy_body("Standard", dns_proxy=False))
    relaxed = policy_body("Standard", dns_proxy=False)
    relaxed["properties"]["dnsSettings"]["requireProxyForNetworkRules"] = False
    emulator.put_policy(SUB, RG, NO_PROXY_NOT_REQUIRED, relaxed)
    emulator.put_ip_group(
        SUB, RG, "ipg-compute", {"location": LOCATION, "properties": {"ipAddresses": ["10.1.0.0/16"]}}
    )


def put_group(net: NetworkManagementClient, body: dict[str, Any], *, policy: str = POLICY, name: str = "aml") -> Any:
    return net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, name, body).result()


def with_rule(rule: dict[str, Any]) -> dict[str, Any]:
    return group_body([filter_collection(rules=[rule])])


REJECTED: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, group body, policy, error code)
    ("group priority below 100", group_body(priority=99), POLICY, "FirewallPolicyRuleCollectionGroupInvalidPriority"),
    (
        "group priority above 65000",
        group_body(priority=65001),
        POLICY,
        "FirewallPolicyRuleCollectionGroupInvalidPriority",
    ),
    (
        "collection priority",
        group_body([filter_collection(priority=65001)]),
        POLICY,
        "FirewallPolicyRuleCollectionInvalidPriority",
    ),
    ("collection name starts with '-'", group_body([filter_collection(name="-coll")]), POLICY, "InvalidResourceName"),
    ("collection name too long", group_body([filter_collection(name="c" * 81)]), POLICY, "InvalidResourceName"),
    ("rule name ends with '.'", with_rule(network_rule(name="rule.")), POLICY, "InvalidResourceName"),
    ("rule name with a space", with_rule(network_rule(name="a rule")), POLICY, "InvalidResourceName"),
    (
        "duplicate collection names (case-insensitive)",
        group_body([filter_collection(name="dup"), filter_collection(name="DUP", priority=200)]),
        POLICY,
        "FirewallPolicyRuleCollectionDuplicateName",
    ),
    (
        "duplicate rule names (case-insensitive)",
        group_body([filter_collection(rules=[network_rule(name="same"), network_rule(name="Same")])]),
        POLICY,
        "FirewallPolicyRuleDuplicateName",
    ),
    (
        "application protocol Mssql",
        with_rule(application_rule(protocols=[{"protocolType": "Mssql", "port": 1433}])),
        POLICY,
        "FirewallPolicyApplicationRuleInvalidProtocolType",
    ),
    (
        "application port above 64000",
        with_rule(application_rule(protocols=[{"protocolType": "Https", "port": 64001}])),
        POLICY,
        "FirewallPolicyApplicationRuleInvalidPort",
    ),
    (
        "two destination kinds in an application rule",
        with_rule(application_rule(fqdnTags=["WindowsUpdate"])),
        POLICY,
        "FirewallPolicyApplicationRuleInvalidDestination",
    ),
    (
        "no destination in an application rule",
        with_rule(application_rule(targetFqdns=None)),
        POLICY,
        "FirewallPolicyApplicationRuleInvalidDestination",
    ),
    (
        "network rule without destination",
        with_rule(network_rule(destinationAddresses=None)),
        POLICY,
        "FirewallPolicyNetworkRuleMustHaveDestination",
    ),
    (
        "wildcard in network-rule destinationFqdns",
        with_rule(network_rule(destinationAddresses=None, destinationFqdns=["*.blob.core.windows.net"])),
        POLICY,
        "FirewallPolicyNetworkRuleFqdnWildcardNotSupported",
    ),
    (
        "destinationFqdns without DNS proxy",
        with_rule(network_rule(destinationAddresses=None, destinationFqdns=["ml.azure.com"])),
        NO_PROXY,
        "FirewallPolicyNetworkRuleFqdnRequiresDnsProxy",
    ),
    (
        "targetUrls on a Standard policy",
        with_rule(application_rule(targetFqdns=None, targetUrls=["www.contoso.com/ml"])),
        POLICY,
        "FirewallPolicyApplicationRuleTargetUrlsRequirePremium",
    ),
    (
        "terminateTLS on a Standard policy",
        with_rule(application_rule(terminateTLS=True)),
        POLICY,
        "FirewallPolicyApplicationRuleTerminateTlsRequiresPremium",
    ),
    (
        "terminateTLS without transportSecurity",
        with_rule(application_rule(terminateTLS=True)),
        PREMIUM_NO_TLS,
        "FirewallPolicyApplicationRuleTerminateTlsRequiresTransportSecurity",
    ),
    (
        "unknown service tag",
        with_rule(network_rule(destinationAddresses=["Keyvault.WestUS2"])),
        POLICY,
        "AzureFirewallRuleInvalidIpAddressOrRangeFormat",
    ),
    (
        "FQDN in destinationAddresses",
        with_rule(network_rule(destinationAddresses=["ml.azure.com"])),
        POLICY,
        "AzureFirewallRuleInvalidIpAddressOrRangeFormat",
    ),
    (
        "service tag as a source",
        with_rule(network_rule(sourceAddresses=["AzureMachineLearning"])),
        POLICY,
        "AzureFirewallRuleInvalidIpAddressOrRangeFormat",
    ),
    (
        "unknown source IP group",
        with_rule(network_rule(sourceAddresses=None, sourceIpGroups=[IP_GROUP_ID.replace("compute", "none")])),
        POLICY,
        "InvalidResourceReference",
    ),
    (
        "destination port out of range",
        with_rule(network_rule(destinationPorts=["70000"])),
        POLICY,
        "FirewallPolicyRuleConditionInvalidPortOrRangeFormat",
    ),
    (
        "network and application rules in one collection",
        group_body([filter_collection(rules=[network_rule(), application_rule()])]),
        POLICY,
        "FirewallPolicyRuleCollectionInvalidRuleType",
    ),
    (
        "unknown ruleCollectionType (swagger discriminator)",
        group_body([filter_collection() | {"ruleCollectionType": "FirewallPolicyMagicRuleCollection"}]),
        POLICY,
        "InvalidRequestFormat",
    ),
    (
        "rule without ruleType (swagger: required discriminator)",
        with_rule({key: value for key, value in network_rule().items() if key != "ruleType"}),
        POLICY,
        "InvalidRequestFormat",
    ),
    (
        "priority as a string (swagger type)",
        {"properties": {"priority": "high", "ruleCollections": []}},
        POLICY,
        "InvalidRequestFormat",
    ),
    (
        "NAT collection with action Allow (swagger enum)",
        group_body(
            [
                {
                    "ruleCollectionType": "FirewallPolicyNatRuleCollection",
                    "name": "nat",
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [],
                }
            ]
        ),
        POLICY,
        "InvalidRequestFormat",
    ),
    (
        "network protocol HTTP (swagger enum)",
        with_rule(network_rule(ipProtocols=["HTTP"])),
        POLICY,
        "InvalidRequestFormat",
    ),
]


# Swagger-level errors (types, enums, minimum/maximum) answer 400 at once; the service rules end the operation Failed.
SYNCHRONOUS_CODES = frozenset({
    "InvalidRequestFormat",
    "FirewallPolicyRuleCollectionGroupInvalidPriority",
    "FirewallPolicyRuleCollectionInvalidPriority",
    "FirewallPolicyApplicationRuleInvalidProtocolType",
    "FirewallPolicyApplicationRuleInvalidPort",
})


@pytest.mark.usefixtures("policies")
@pytest.mark.parametrize("emulator_options", [{}, {"sync_validation": True}], ids=["async", "sync"])
@pytest.mark.parametrize(("case", "body", "policy", "code"), REJECTED, ids=[case[0] for case in REJECTED])
def test_rule_rejected(
    emulator: Emulator,
    network_client: NetworkFactory,
    emulator_options: dict[str, Any],
    case: str,
    body: dict[str, Any],
    policy: str,
    code: str,
) -> None:
    """Schema errors are a 400; service-rule errors end the operation Failed (PUT 201), or 400 in sync mode."""
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        put_group(net, copy.deepcopy(body), policy=policy)
    synchronous = code in SYNCHRONOUS_CODES or emulator_options.get("sync_validation", False)
    put_status = next(r.status for r in emulator.requests() if r.method == "PUT")
    assert (error.value.status_code, put_status) == ((400, 400) if synchronous else (200, 201)), case
    assert error.value.error is not None
    assert error.value.error.code == code
    assert emulator.get_rule_collection_group(SUB, RG, policy, "aml") is None


ACCEPTED: list[tuple[str, dict[str, Any], str]] = [
    ("priorities at the bounds", group_body([filter_collection(priority=65000)], priority=100), POLICY),
    (
        "names with '.', '-' and trailing '_'",
        group_body([filter_collection(name="c.1-x_", rules=[network_rule(name="r_")])]),
        POLICY,
    ),
    (
        "application port 64000",
        with_rule(application_rule(protocols=[{"protocolType": "Http", "port": 64000}])),
        POLICY,
    ),
    (
        "service tags, case-insensitive, and addresses",
        with_rule(
            network_rule(
                destinationAddresses=[
                    "storage.westus2",
                    "AzureKeyVault.WestUS2",
                    "10.0.0.0/8",
                    "10.1.0.1-10.1.0.9",
                    "*",
                ]
            )
        ),
        POLICY,
    ),
    (
        "destinationFqdns with DNS proxy",
        with_rule(network_rule(destinationAddresses=None, destinationFqdns=["ml.azure.com"])),
        POLICY,
    ),
    (
        "destinationFqdns with requireProxyForNetworkRules false",
        with_rule(network_rule(destinationAddresses=None, destinationFqdns=["ml.azure.com"])),
        NO_PROXY_NOT_REQUIRED,
    ),
    (
        "targetUrls and terminateTLS on Premium with a CA",
        with_rule(application_rule(targetFqdns=None, targetUrls=["www.contoso.com/ml"], terminateTLS=True)),
        PREMIUM,
    ),
    (
        "existing IP groups",
        with_rule(
            network_rule(
                sourceAddresses=None,
                sourceIpGroups=[IP_GROUP_ID],
                destinationAddresses=None,
                destinationIpGroups=[IP_GROUP_ID.upper()],
            )
        ),
        POLICY,
    ),
    (
        "collection without priority (as in the WebCategories example)",
        group_body([{key: v for key, v in filter_collection().items() if key != "priority"}]),
        POLICY,
    ),
]


@pytest.mark.usefixtures("policies")
@pytest.mark.parametrize(("case", "body", "policy"), ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_rule_accepted(network_client: NetworkFactory, case: str, body: dict[str, Any], policy: str) -> None:
    with network_client(SUB, retry_total=0) as net:
        assert put_group(net, copy.deepcopy(body), policy=policy).properties.provisioning_state == "Succeeded", case


@pytest.mark.usefixtures("policies")
@pytest.mark.parametrize("name", ["-aml", "aml-", "a" * 81, "aml group", "ä"])
def test_group_name_rule(network_client: NetworkFactory, name: str) -> None:
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        put_group(net, group_body(), name=name)
    assert error.value.error is not None
    assert error.value.error.code == "InvalidResourceName"


@pytest.mark.usefixtures("policies")
def test_group_size_limit_default_is_2_mb(emulator: Emulator, network_client: NetworkFactory) -> None:
    addresses = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(160_000)]
    big = with_rule(network_rule(sourceAddresses=addresses))
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        put_group(net, big)
    assert error.value.error is not None
    assert error.value.error.code == "FirewallPolicyRuleCollectionGroupSizeLimitExceeded"


@pytest.mark.parametrize("emulator_options", [{"max_group_bytes": 600}])
@pytest.mark.usefixtures("policies")
def test_group_size_limit_is_configurable(network_client: NetworkFactory) -> None:
    with network_client(SUB, retry_total=0) as net:
        put_group(net, group_body())
        with pytest.raises(HttpResponseError) as error:
            put_group(net, with_rule(network_rule(sourceAddresses=[f"10.0.0.{i}" for i in range(60)])))
    assert error.value.error is not None
    assert error.value.error.code == "FirewallPolicyRuleCollectionGroupSizeLimitExceeded"


@pytest.mark.parametrize("emulator_options", [{"max_groups_per_policy": 2}])
@pytest.mark.usefixtures("policies")
def test_groups_per_policy_limit(network_client: NetworkFactory) -> None:
    with network_client(SUB, retry_total=0) as net:
        put_group(net, group_body(), name="one")
        put_group(net, group_body(), name="two")
        put_group(net, group_body(priority=2000), name="two")  # replacing an existing group is fine
        with pytest.raises(HttpResponseError) as error:
            put_group(net, group_body(), name="three")
    assert error.value.error is not None
    assert error.value.error.code == "FirewallPolicyRuleCollectionGroupsLimitReached"


ROUTES_REJECTED = [
    ("unknown next hop type", route_body(hop="Firewall"), "InvalidRequestFormat"),
    ("missing next hop type", {"properties": {"addressPrefix": "10.0.0.0/8"}}, "InvalidRequestFormat"),
    ("VirtualAppliance without IP", route_body("0.0.0.0/0", "VirtualAppliance"), "InvalidNextHopIpAddress"),
    ("next hop IP with Internet", route_body("0.0.0.0/0", "Internet", "10.0.1.4"), "NextHopIpAddressNotAllowed"),
    ("unknown service tag as prefix", route_body("AzureCloud.westeurope2"), "InvalidAddressPrefixFormat"),
    ("FQDN as prefix", route_body("ml.azure.com"), "InvalidAddressPrefixFormat"),
    ("host bits set", route_body("10.0.0.1/24"), "InvalidCIDRNotation"),
]


@pytest.mark.parametrize(("case", "body", "code"), ROUTES_REJECTED, ids=[case[0] for case in ROUTES_REJECTED])
def test_route_rule_rejected(
    emulator: Emulator, network_client: NetworkFactory, case: str, body: dict[str, Any], code: str
) -> None:
    emulator.put_route_table(SUB, RG, "udr", {"location": LOCATION})
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        net.routes.begin_create_or_update(RG, "udr", "r1", body).result()
    assert error.value.status_code == 400, case
    assert error.value.error is not None
    assert error.value.error.code == code


def test_route_name_and_service_tag_route_limit(emulator: Emulator, network_client: NetworkFactory) -> None:
    tags = [v["name"] for v in emulator.reference.service_tags_document()["values"] if v["name"].startswith("Storage.")]
    routes = [{"name": f"tag-{i}", **route_body(tag)} for i, tag in enumerate(tags[:26])]
    emulator.put_route_table(SUB, RG, "udr", {"location": LOCATION, "properties": {"routes": routes[:25]}})
    with network_client(SUB, retry_total=0) as net:
        with pytest.raises(HttpResponseError) as too_many:
            net.routes.begin_create_or_update(RG, "udr", "tag-25", routes[25]).result()
        assert too_many.value.error is not None
        assert too_many.value.error.code == "RouteTableServiceTagRoutesLimitReached"
        net.routes.begin_create_or_update(RG, "udr", "cidr", route_body("10.0.0.0/8")).result()
        with pytest.raises(HttpResponseError) as bad_name:
            net.routes.begin_create_or_update(RG, "udr", "route-", route_body("10.0.0.0/8")).result()
        assert bad_name.value.error is not None
        assert bad_name.value.error.code == "InvalidResourceName"


def test_policy_rules(emulator: Emulator, network_client: NetworkFactory) -> None:
    emulator.add_resource_group(SUB, RG, LOCATION)
    with network_client(SUB, retry_total=0) as net:
        cases = [
            ("fwp", {"properties": {}}, "LocationRequired"),
            ("fwp", {"location": LOCATION, "properties": {"sku": {"tier": "Gold"}}}, "InvalidRequestFormat"),
            ("fwp-", {"location": LOCATION}, "InvalidResourceName"),
        ]
        for name, body, code in cases:
            with pytest.raises(HttpResponseError) as error:
                net.firewall_policies.begin_create_or_update(RG, name, body).result()
            assert error.value.error is not None
            assert error.value.error.code == code


@pytest.mark.usefixtures("policies")
def test_body_that_is_not_json(arm_http: ArmHttp) -> None:
    path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/firewallPolicies/{POLICY}"
    for data in (b"{not json", b"[]", b""):
        response = arm_http.request(
            "PUT", f"{path}/ruleCollectionGroups/aml", data=data, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == {"code": "InvalidRequestFormat", "message": "Cannot parse the request."}


@pytest.mark.usefixtures("policies")
def test_python_api_validates_unless_told_not_to(emulator: Emulator) -> None:
    broken = group_body(priority=10)
    with pytest.raises(ArmError) as error:
        emulator.put_rule_collection_group(SUB, RG, POLICY, "broken", broken)
    assert error.value.code == "FirewallPolicyRuleCollectionGroupInvalidPriority"
    stored = emulator.put_rule_collection_group(SUB, RG, POLICY, "broken", broken, validate=False)
    assert stored["properties"]["priority"] == 10
