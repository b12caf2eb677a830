"""``GET /metadata/endpoints``: the cloud metadata Resource Manager serves without authentication.

``api-version=2015-01-01`` answers one object (``galleryEndpoint``, ``graphEndpoint``, ``portalEndpoint``,
``authentication``); 2019-05-01 (azure-ai-ml's) a list of clouds; 2022-09-01 and later (the Azure CLI's
``az cloud register --endpoint-resource-manager``) the one cloud this endpoint belongs to, as an object. The
emulator describes one cloud, ``AmlfwEmulator``, whose Resource Manager is the emulator itself and whose
audiences are ARM's; most other endpoints are placeholders under ``.invalid`` so that nothing resolves by
accident.
"""

from __future__ import annotations

from typing import Any

METADATA_PATH = "/metadata/endpoints"
CLOUD_NAME = "AmlfwEmulator"
AUDIENCES = ["https://management.core.windows.net/", "https://management.azure.com/"]


def cloud_metadata(base_url: str, api_version: str) -> Any:
    authentication = {"loginEndpoint": "https://login.microsoftonline.com/", "audiences": AUDIENCES,
                      "tenant": "common", "identityProvider": "AAD"}
    if api_version == "2015-01-01":
        return {"galleryEndpoint": "https://gallery.emulator.invalid/", "graphEndpoint": "https://graph.windows.net/",
                "portalEndpoint": "https://portal.emulator.invalid/", "authentication": authentication}
    cloud = {
        "name": CLOUD_NAME,
        "resourceManager": base_url.rstrip("/") + "/",
        "authentication": authentication,
        "portal": "https://portal.emulator.invalid",
        "gallery": "https://gallery.emulator.invalid/",
        "graph": "https://graph.windows.net/",
        "graphAudience": "https://graph.windows.net/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "media": "https://rest.media.emulator.invalid",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "batch": "https://batch.core.windows.net/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/arm-compute/"
                           "quickstart-templates/aliases.json",
        "appInsightsResourceId": "https://api.applicationinsights.io",
        "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
        "logAnalyticsResourceId": "https://api.loganalytics.io",
        "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
        "attestationResourceId": "https://attest.azure.net",
        "ossrdbmsResourceId": "https://ossrdbms-aad.database.windows.net",
        "suffixes": {"acrLoginServer": "azurecr.io",
                     "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
                     "azureDataLakeStoreFileSystem": "azuredatalakestore.net", "azureFrontDoorEndpointSuffix":
                     "azurefd.net", "keyVaultDns": "vault.azure.net", "mariadbServerEndpoint":
                     "mariadb.database.azure.com", "mhsmDns": "managedhsm.azure.net", "mysqlServerEndpoint":
                     "mysql.database.azure.com", "postgresqlServerEndpoint": "postgres.database.azure.com",
                     "sqlServerHostname": "database.windows.net", "storage": "core.windows.net",
                     "storageSyncEndpointSuffix": "afs.azure.net", "synapseAnalytics": "dev.azuresynapse.net",
                     "attestationEndpoint": "attest.azure.net"},
    }
    return cloud if api_version >= "2022-09-01" else [cloud]
