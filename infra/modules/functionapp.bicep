// The function app on a Flex Consumption plan (FC1, Linux, Python 3.11), running as a user-assigned
// identity, behind App Service Authentication with Microsoft Entra ID.

param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob container URL Flex Consumption deploys the package from.')
param deploymentContainerUrl string

@description('App settings, name to value (built in main.bicep).')
param appSettings object

@description('Memory of each instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Flex Consumption accepts 40 to 1000. Every instance counts against the subscription's regional
// Flex quota (250 cores by default; a 2048 MB instance is one core), shared by all Flex apps there.
@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Concurrent HTTP requests one instance takes before the platform adds another.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Always-ready instances for the HTTP functions (0: scale to zero; each one is billed around the clock).')
@minValue(0)
@maxValue(20)
param httpAlwaysReadyInstances int = 0

@description('Subnet (delegated to Microsoft.App/environments) the app joins for outbound traffic; empty: no VNet integration.')
param virtualNetworkSubnetId string = ''

@description('Application (client) id of the Microsoft Entra app registration callers get tokens for.')
param entraClientId string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the service it deploys by this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Key Vault references (REGISTRY_SEALING_KEY*) resolve with the user-assigned identity.
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      // Per-trigger concurrency: HTTP here; the Service Bus trigger takes maxConcurrentCalls from
      // host.json, which is also its target executions per instance for scaling.
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
        alwaysReady: (httpAlwaysReadyInstances > 0) ? [
          {
            name: 'http'
            instanceCount: httpAlwaysReadyInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    // No ftpsState: Flex Consumption does not take it (ARM rejects it in some regions); FTP is off
    // through the publishing-credentials policy below.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      cors: {
        allowedOrigins: []
      }
    }
  }
}

// The whole set of app settings (a PUT replaces them all: nothing set by hand survives a deployment).
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// No FTP and no basic-auth publishing: deployments authenticate with Microsoft Entra ID.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Easy Auth: every request needs a valid Entra ID token for the app registration; anything else gets
// 401 before the code runs. On Flex Consumption the Functions host runs it in process (its
// JobHostEasyAuthMiddleware, enabled when WEBSITE_AUTH_ENABLED reads true), then passes the caller
// in X-MS-CLIENT-PRINCIPAL* headers, stripping any the client sent. WEBSITE_AUTH_ENABLED comes from
// this resource, but an app setting of that name takes precedence over it: the app settings must
// never set it (tests/infra/test_settings_contract.py checks). No token store: this is an API called
// with bearer tokens, not a browser session, so there is nothing to keep server-side.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  // One configuration change of the site at a time.
  dependsOn: [
    settings
  ]
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          // v2.0 access tokens carry the client id as audience, v1.0 tokens the application id URI.
          allowedAudiences: [
            entraClientId
            'api://${entraClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
