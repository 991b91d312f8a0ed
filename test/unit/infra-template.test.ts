/**
 * infra/azuredeploy.json cannot be deployed from here, so it is checked here: it parses; every
 * parameters(), variables(), resourceId()/reference() target, dependsOn and role-assignment scope
 * names something the template declares; Resource Manager's start-time rules hold (no reference()
 * in variables, names or conditions); every role definition id is a documented built-in role, and
 * the grants are the README's (Send on the dead-letter hub to the app alone, at the hub's scope);
 * and the app settings it produces, with the parameter defaults and placeholders for runtime
 * values, go through the app's own loadConfig, every one of them read by it; with
 * accessMode=entra, App Service authentication with Entra ID is deployed, and the settings plus
 * what the platform then injects (WEBSITE_AUTH_ENABLED) give the app entra mode, trusted.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type HubsinkConfig } from '../../src/config.js';
import {
  calls,
  evaluateValue,
  evaluateVariables,
  isExpression,
  parameterValues,
  parseExpression,
  resourceIdOf,
  strings,
  SUBSCRIPTION,
  TENANT,
  type Declared,
} from '../support/arm.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TEMPLATE_TEXT = readFileSync(path.join(ROOT, 'infra/azuredeploy.json'), 'utf8');

interface Resource {
  type: string;
  apiVersion: string;
  name: string;
  condition?: string;
  scope?: string;
  dependsOn?: string[];
  properties?: Record<string, unknown>;
}
interface Template {
  $schema: string;
  parameters: Record<string, { type: string; defaultValue?: unknown; allowedValues?: unknown[] }>;
  variables?: Record<string, unknown>;
  resources: Resource[];
  outputs?: Record<string, { type: string; value: unknown }>;
}

const template = JSON.parse(TEMPLATE_TEXT) as Template;

/**
 * Built-in role ids as the Azure RBAC documentation lists them ("Azure built-in roles"): id and name.
 * A role assignment whose id is not here, or is here under another name, fails.
 */
const DOCUMENTED_ROLES: Readonly<Record<string, string>> = {
  'a638d3c7-ab3a-418d-83e6-5f17a39d4fde': 'Azure Event Hubs Data Receiver',
  '2b629674-e913-4c01-ae53-ef4638d8f975': 'Azure Event Hubs Data Sender',
  'f526a384-b230-433a-b45c-95f59c4a2dec': 'Azure Event Hubs Data Owner',
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe': 'Storage Blob Data Contributor',
  '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1': 'Storage Blob Data Reader',
};

/** The names the template's `roles` variable gives them, mapped to the documented names. */
const ROLE_VARIABLE_NAMES: Readonly<Record<string, string>> = {
  eventHubsDataReceiver: 'Azure Event Hubs Data Receiver',
  eventHubsDataSender: 'Azure Event Hubs Data Sender',
  storageBlobDataOwner: 'Storage Blob Data Owner',
  storageBlobDataContributor: 'Storage Blob Data Contributor',
};

const ENTRA_CLIENT_ID = 'cccccccc-0000-4000-8000-0000000000c1';

/** The deployments a test evaluates: each database kind, with and without an operator, each access mode. */
const CASES: Record<string, Record<string, unknown>> = {
  flexibleServer: {},
  cosmosPostgres: { databaseKind: 'cosmosPostgres', citusAdministratorPassword: 'placeholder-password' },
  existing: { databaseKind: 'existing', existingDatabaseHost: 'pg.example.org', existingDatabaseName: undefined },
  operator: { operatorObjectId: 'bbbbbbbb-0000-4000-8000-0000000000b0', operatorPrincipalName: 'ops@example.org' },
  entra: { accessMode: 'entra', entraClientId: ENTRA_CLIENT_ID },
  renamed: { ingestHubName: 'events-in', deadLetterHubName: 'events-dlq', ingestConsumerGroup: 'cg-a', deadLetterConsumerGroup: 'cg-b', replayConsumerGroup: 'cg-c', schema: 'shop_stats' },
};
for (const c of Object.values(CASES)) for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];

interface Evaluated {
  params: Record<string, unknown>;
  vars: Record<string, unknown>;
  declared: Declared[];
  deployed: (Resource & { id: string; evaluatedName: string; deployed: boolean })[];
  named: { id: string; fn: string }[];
}

function evaluateTemplate(t: Template, given: Record<string, unknown>): Evaluated {
  const named: { id: string; fn: string }[] = [];
  const onResourceId = (id: string, fn: string): void => void named.push({ id, fn });
  const params = parameterValues(t.parameters, given);
  const vars = evaluateVariables(t.variables ?? {}, params, onResourceId);
  const scope = { parameters: params, variables: vars, onResourceId };
  const deployed = t.resources.map((r) => {
    const evaluatedName = String(evaluateValue(r.name, scope));
    const id = resourceIdOf(r.type, evaluatedName.split('/'));
    const condition = r.condition === undefined ? true : evaluateValue(r.condition, scope) === true;
    return { ...r, id, evaluatedName, deployed: condition };
  });
  return { params, vars, declared: deployed.map((r) => ({ type: r.type, name: r.evaluatedName, id: r.id })), deployed, named };
}

function appSettings(t: Template, given: Record<string, unknown>): Record<string, string> {
  const ev = evaluateTemplate(t, given);
  const site = ev.deployed.find((r) => r.type === 'Microsoft.Web/sites');
  assert.ok(site, 'the template declares a Function App');
  const props = evaluateValue(site.properties, { parameters: ev.params, variables: ev.vars }) as { siteConfig: { appSettings: { name: string; value: string }[] } };
  const out: Record<string, string> = {};
  for (const s of props.siteConfig.appSettings) {
    assert.equal(typeof s.value, 'string', `app setting ${s.name} is a string`);
    assert.ok(!(s.name in out), `app setting ${s.name} appears once`);
    out[s.name] = s.value;
  }
  return out;
}

interface AuthSettingsV2 {
  platform: { enabled: boolean };
  globalValidation: { requireAuthentication: boolean; unauthenticatedClientAction: string; redirectToProvider?: string };
  identityProviders: Record<string, { enabled: boolean; registration: { clientId: string; openIdIssuer: string }; validation?: { allowedAudiences: string[] } }>;
}

/** The App Service authentication the deployment configures (Microsoft.Web/sites/config authsettingsV2), if any. */
function authSettings(t: Template, given: Record<string, unknown>): AuthSettingsV2 | undefined {
  const ev = evaluateTemplate(t, given);
  const r = ev.deployed.find((x) => x.type === 'Microsoft.Web/sites/config' && x.evaluatedName.endsWith('/authsettingsV2') && x.deployed);
  return r ? (evaluateValue(r.properties, { parameters: ev.params, variables: ev.vars }) as AuthSettingsV2) : undefined;
}

/**
 * What App Service adds to the app's environment itself: WEBSITE_AUTH_ENABLED, read-only, true when
 * its authentication is on (the App Service documentation's list of environment variables).
 */
function platformSettings(auth: AuthSettingsV2 | undefined): Record<string, string> {
  return auth?.platform.enabled === true ? { WEBSITE_AUTH_ENABLED: 'True' } : {};
}

/**
 * Pure: the settings `load` never reads. A setting the template writes under a name that config.ts
 * no longer reads (renamed there) would silently fall back to its default in Azure.
 */
export function unreadSettings(settings: Record<string, string>, load: (env: Record<string, string | undefined>) => unknown): string[] {
  const read = new Set<string>();
  const env = new Proxy(settings, {
    get(target, key) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key) as string | undefined;
    },
  });
  load(env);
  return Object.keys(settings).filter((k) => !read.has(k));
}

describe('infra/azuredeploy.json', () => {
  test('parses as a deployment template with the 2019-04-01 schema', () => {
    assert.match(template.$schema, /\/2019-04-01\/deploymentTemplate\.json#$/);
    assert.ok(Array.isArray(template.resources) && template.resources.length > 0);
  });

  test('every expression parses, and every parameters()/variables() names a declared one', () => {
    const params = new Set(Object.keys(template.parameters));
    const vars = new Set(Object.keys(template.variables ?? {}));
    const nested = template.resources.filter((r) => r.type === 'Microsoft.Resources/deployments');
    let n = 0;
    for (const { path: p, value } of strings(template)) {
      if (!isExpression(value)) continue;
      // The nested deployment's inner template has parameters of its own (checked below).
      if (/\.properties\.template\./.test(p)) continue;
      for (const c of calls(parseExpression(value))) {
        const arg = c.args[0];
        if (c.name === 'parameters') assert.ok(arg?.kind === 'str' && params.has(arg.value), `${p}: parameters(${JSON.stringify(arg)}) is declared`);
        if (c.name === 'variables') assert.ok(arg?.kind === 'str' && vars.has(arg.value), `${p}: variables(${JSON.stringify(arg)}) is declared`);
        n++;
      }
    }
    assert.ok(n > 100, `found ${n} calls`);
    for (const d of nested) {
      const inner = (d.properties as { template: Template }).template;
      const innerParams = new Set(Object.keys(inner.parameters));
      const passed = Object.keys((d.properties as { parameters: Record<string, unknown> }).parameters);
      assert.deepEqual([...innerParams].sort(), passed.sort(), `${d.name}: the nested template gets exactly the parameters it declares`);
      for (const { path: p, value } of strings(inner)) {
        if (!isExpression(value)) continue;
        for (const c of calls(parseExpression(value))) {
          if (c.name === 'parameters') assert.ok(c.args[0]?.kind === 'str' && innerParams.has(c.args[0].value), `${p} in ${d.name}`);
          assert.notEqual(c.name, 'variables', `${p}: the nested template declares no variables`);
        }
      }
    }
  });

  test('start-time values: no reference() or list*() in variables, names, types, conditions or dependsOn', () => {
    const runtime = (v: unknown): string[] =>
      strings(v)
        .filter((s) => isExpression(s.value))
        .flatMap((s) => calls(parseExpression(s.value)).filter((c) => /^(reference|list)/i.test(c.name)).map((c) => `${s.path}: ${c.name}()`));
    assert.deepEqual(runtime(template.variables), []);
    for (const r of template.resources) assert.deepEqual(runtime({ name: r.name, type: r.type, condition: r.condition, dependsOn: r.dependsOn, scope: r.scope }), [], r.name);
  });

  for (const [label, given] of Object.entries(CASES)) {
    test(`${label}: every resourceId()/reference() target, dependsOn and scope is a declared resource`, () => {
      const ev = evaluateTemplate(template, given);
      const ids = new Set(ev.declared.map((d) => d.id.toLowerCase()));
      const scope = { parameters: ev.params, variables: ev.vars, onResourceId: (id: string, fn: string) => void ev.named.push({ id, fn }) };
      for (const r of ev.deployed) {
        for (const dep of r.dependsOn ?? []) {
          const id = String(evaluateValue(dep, scope));
          assert.ok(ids.has(id.toLowerCase()), `${r.evaluatedName} dependsOn ${id}: not declared`);
          assert.notEqual(id.toLowerCase(), r.id.toLowerCase(), `${r.evaluatedName} depends on itself`);
        }
        if (r.scope !== undefined) {
          const rel = String(evaluateValue(r.scope, scope)).split('/');
          const type = [rel[0], rel[1], ...rel.slice(3).filter((_, k) => k % 2 === 0)].join('/');
          const names = [rel[2], ...rel.slice(3).filter((_, k) => k % 2 === 1)].map(String);
          const id = resourceIdOf(type, names);
          assert.ok(ids.has(id.toLowerCase()), `${r.evaluatedName} scope ${id}: not declared`);
          assert.ok(r.dependsOn?.some((d) => String(evaluateValue(d, scope)).toLowerCase() === id.toLowerCase()), `${r.type} on ${id} depends on its scope`);
        }
        // Evaluating the properties runs every reference() they hold against the runtime table.
        if (r.deployed && r.type === 'Microsoft.Resources/deployments') {
          // Inner expression scope: the outer template evaluates only the parameters it passes.
          const props = r.properties as { parameters: Record<string, { value: unknown }>; template: Template };
          const passed = Object.fromEntries(Object.entries(props.parameters).map(([k, v]) => [k, evaluateValue(v.value, scope)]));
          const inner = evaluateTemplate(props.template, passed);
          for (const ir of inner.deployed) {
            evaluateValue(ir.properties, { parameters: inner.params, variables: inner.vars });
            // A child resource's parent is declared by the outer template.
            const parentType = ir.type.split('/').slice(0, -1).join('/');
            const parent = resourceIdOf(parentType, ir.evaluatedName.split('/').slice(0, -1));
            assert.ok(ids.has(parent.toLowerCase()), `${ir.type} ${ir.evaluatedName}: parent ${parent} not declared`);
          }
        } else if (r.deployed) evaluateValue(r.properties, scope);
      }
      for (const o of Object.values(template.outputs ?? {})) evaluateValue(o.value, scope);
      assert.ok(ev.named.length > 20);
      for (const { id, fn } of ev.named) {
        if (id.includes('/providers/Microsoft.Authorization/roleDefinitions/')) continue;
        assert.ok(ids.has(id.toLowerCase()), `${fn}(${id}): not declared in the template`);
      }
    });
  }

  test('a dependsOn or resourceId() naming an undeclared resource is caught (the check can fail)', () => {
    const broken = JSON.parse(TEMPLATE_TEXT) as Template;
    const site = broken.resources.find((r) => r.type === 'Microsoft.Web/sites');
    assert.ok(site?.dependsOn);
    site.dependsOn.push("[resourceId('Microsoft.EventHub/namespaces', 'no-such-namespace')]");
    const ev = evaluateTemplate(broken, {});
    const ids = new Set(ev.declared.map((d) => d.id.toLowerCase()));
    const scope = { parameters: ev.params, variables: ev.vars };
    const missing = (site.dependsOn ?? []).map((d) => String(evaluateValue(d, scope))).filter((id) => !ids.has(id.toLowerCase()));
    assert.equal(missing.length, 1);
    assert.match(missing[0] ?? '', /no-such-namespace$/);
    assert.throws(() => evaluateValue("[parameters('nope')]", scope), /parameters\('nope'\) is not declared/);
    assert.throws(() => evaluateValue("[reference(variables('siteId'), '2024-04-01').noSuchProperty]", scope), /has no property noSuchProperty/);
  });

  test('role definition ids are documented built-in roles, under the names the template gives them', () => {
    const roles = template.variables?.roles as Record<string, string>;
    for (const [key, id] of Object.entries(roles)) {
      assert.equal(DOCUMENTED_ROLES[id], ROLE_VARIABLE_NAMES[key], `roles.${key} = ${id}`);
    }
    const ev = evaluateTemplate(template, CASES.operator ?? {});
    const scope = { parameters: ev.params, variables: ev.vars };
    for (const r of ev.deployed.filter((x) => x.type === 'Microsoft.Authorization/roleAssignments')) {
      const props = evaluateValue(r.properties, scope) as { roleDefinitionId: string };
      const guid = /\/providers\/Microsoft\.Authorization\/roleDefinitions\/([0-9a-f-]{36})$/.exec(props.roleDefinitionId)?.[1];
      assert.ok(guid && DOCUMENTED_ROLES[guid], `${r.evaluatedName}: ${props.roleDefinitionId} is a documented role`);
      assert.ok(props.roleDefinitionId.startsWith(`/subscriptions/${SUBSCRIPTION}/providers/`), 'a subscription-level role definition id');
    }
  });

  test("grants match the README's security section: Send on the dead-letter hub at its scope, to the app alone", () => {
    const ev = evaluateTemplate(template, CASES.operator ?? {});
    const scope = { parameters: ev.params, variables: ev.vars };
    const appPrincipal = 'aaaaaaaa-0000-4000-8000-00000000a99b';
    const grants = ev.deployed
      .filter((x) => x.type === 'Microsoft.Authorization/roleAssignments' && x.deployed)
      .map((r) => {
        const p = evaluateValue(r.properties, scope) as { roleDefinitionId: string; principalId: string };
        const role = DOCUMENTED_ROLES[p.roleDefinitionId.split('/').at(-1) ?? ''] ?? '?';
        const at = String(evaluateValue(r.scope, scope));
        return `${p.principalId === appPrincipal ? 'app' : 'operator'}: ${role} on ${at}`;
      })
      .sort();
    const ns = String(ev.params.eventHubsNamespaceName);
    const sa = String(ev.params.storageAccountName);
    assert.deepEqual(grants, [
      `app: Azure Event Hubs Data Receiver on Microsoft.EventHub/namespaces/${ns}/eventhubs/clickstream`,
      `app: Azure Event Hubs Data Receiver on Microsoft.EventHub/namespaces/${ns}/eventhubs/clickstream-deadletter`,
      `app: Azure Event Hubs Data Sender on Microsoft.EventHub/namespaces/${ns}/eventhubs/clickstream`,
      `app: Azure Event Hubs Data Sender on Microsoft.EventHub/namespaces/${ns}/eventhubs/clickstream-deadletter`,
      `app: Storage Blob Data Owner on Microsoft.Storage/storageAccounts/${sa}`,
      `operator: Azure Event Hubs Data Receiver on Microsoft.EventHub/namespaces/${ns}/eventhubs/clickstream`,
      `operator: Azure Event Hubs Data Receiver on Microsoft.EventHub/namespaces/${ns}/eventhubs/clickstream-deadletter`,
      `operator: Storage Blob Data Contributor on Microsoft.Storage/storageAccounts/${sa}`,
    ]);
    // Without an operator, the app's grants alone.
    const none = evaluateTemplate(template, {}).deployed.filter((x) => x.type === 'Microsoft.Authorization/roleAssignments' && x.deployed);
    assert.equal(none.length, 5);
  });

  test('no key-based secret: no listKeys(), no shared keys, storage and Event Hubs local auth off', () => {
    for (const { path: p, value } of strings(template)) {
      if (isExpression(value)) for (const c of calls(parseExpression(value))) assert.ok(!/^list/i.test(c.name), `${p}: ${c.name}()`);
      assert.doesNotMatch(value, /SharedAccessKey|AccountKey|DefaultEndpointsProtocol/, p);
    }
    const storage = template.resources.find((r) => r.type === 'Microsoft.Storage/storageAccounts');
    assert.equal(storage?.properties?.allowSharedKeyAccess, false);
    assert.equal(template.parameters.eventHubsDisableLocalAuth?.defaultValue, true);
    const site = template.resources.find((r) => r.type === 'Microsoft.Web/sites') as Resource & { identity: { type: string }; properties: { functionAppConfig: Record<string, Record<string, unknown>> } };
    assert.equal(site.identity.type, 'SystemAssigned');
    assert.deepEqual((site.properties.functionAppConfig.deployment?.storage as { authentication: unknown }).authentication, { type: 'SystemAssignedIdentity' });
    assert.deepEqual(
      (template.parameters.nodeVersion?.allowedValues ?? []).map(Number).filter((v) => v < 20),
      [],
      'Node.js 20 or newer',
    );
  });

  for (const [label, given] of Object.entries(CASES)) {
    test(`${label}: the app settings go through loadConfig, every one read by it`, () => {
      const settings = appSettings(template, given);
      assert.deepEqual(unreadSettings(settings, loadConfig), [], 'settings the app never reads (renamed in src/config.ts?)');
      const cfg: HubsinkConfig = loadConfig({ ...settings, ...platformSettings(authSettings(template, given)) });
      const p = parameterValues(template.parameters, given);
      assert.deepEqual(cfg.access, { mode: p.accessMode, platformAuthEnabled: p.accessMode === 'entra' });
      assert.deepEqual(cfg.eventHubs, { kind: 'identity', fullyQualifiedNamespace: `${String(p.eventHubsNamespaceName)}.servicebus.windows.net` });
      assert.deepEqual(cfg.storage, { kind: 'identity', accountName: p.storageAccountName });
      assert.equal(cfg.ingestHub, p.ingestHubName);
      assert.equal(cfg.deadLetterHub, p.deadLetterHubName);
      assert.equal(cfg.consumerGroup, p.ingestConsumerGroup);
      assert.equal(cfg.deadLetterConsumerGroup, p.deadLetterConsumerGroup);
      assert.equal(cfg.replayConsumerGroup, p.replayConsumerGroup);
      assert.equal(cfg.schema, p.schema);
      assert.match(cfg.appInsightsConnectionString ?? '', /^InstrumentationKey=/);
      assert.deepEqual(cfg.warnings, []);
      const db = cfg.database;
      assert.equal(db?.kind, 'params');
      if (db?.kind !== 'params') return;
      assert.equal(db.ssl, true, 'TLS to the database');
      assert.equal(db.database, p.databaseName);
      if (p.databaseKind === 'cosmosPostgres') {
        assert.match(db.host, /^c-.*\.postgres\.cosmos\.azure\.com$/);
        assert.deepEqual([db.user, db.entraAuth, db.password], ['citus', false, 'placeholder-password']);
      } else if (p.databaseKind === 'existing') {
        assert.deepEqual([db.host, db.user, db.entraAuth, db.password], ['pg.example.org', p.appName, true, undefined]);
      } else {
        assert.equal(db.host, `${String(p.databaseServerName)}.postgres.database.azure.com`);
        assert.deepEqual([db.user, db.entraAuth, db.password], [p.appName, true, undefined]);
      }
    });
  }

  test('access modes: key (the default) deploys no authentication; entra deploys App Service authentication with Entra ID, so the platform vouches for the caller', () => {
    assert.deepEqual(template.parameters.accessMode?.allowedValues, ['key', 'entra']);
    assert.equal(authSettings(template, {}), undefined);
    assert.equal(appSettings(template, {}).HUBSINK_ACCESS, 'key');

    const settings = appSettings(template, CASES.entra ?? {});
    assert.equal(settings.HUBSINK_ACCESS, 'entra');
    // WEBSITE_AUTH_ENABLED is the platform's to set: a template (or anyone) writing it would make a
    // forged X-MS-CLIENT-PRINCIPAL header trusted while authentication is off.
    assert.ok(!('WEBSITE_AUTH_ENABLED' in settings));
    assert.ok(!Object.keys(appSettings(template, {})).includes('WEBSITE_AUTH_ENABLED'));
    const auth = authSettings(template, CASES.entra ?? {});
    assert.ok(auth, 'entra deploys authsettingsV2');
    assert.equal(auth.platform.enabled, true);
    // Every request signs in first: an unauthenticated one never reaches hubsink.
    assert.deepEqual(auth.globalValidation, { requireAuthentication: true, unauthenticatedClientAction: 'RedirectToLoginPage', redirectToProvider: 'azureactivedirectory' });
    assert.deepEqual(Object.keys(auth.identityProviders), ['azureActiveDirectory']);
    const aad = auth.identityProviders.azureActiveDirectory;
    assert.equal(aad?.enabled, true);
    assert.deepEqual(aad?.registration, { clientId: ENTRA_CLIENT_ID, openIdIssuer: `https://login.microsoftonline.com/${TENANT}/v2.0` });
    assert.deepEqual(aad?.validation?.allowedAudiences, [ENTRA_CLIENT_ID, `api://${ENTRA_CLIENT_ID}`]);
    const other = authSettings(template, { ...CASES.entra, entraTenantId: 'dddddddd-0000-4000-8000-0000000000d1' });
    assert.equal(other?.identityProviders.azureActiveDirectory?.registration.openIdIssuer, 'https://login.microsoftonline.com/dddddddd-0000-4000-8000-0000000000d1/v2.0');

    // What the app then decides: entra mode trusts the principal header only with the platform's setting.
    assert.deepEqual(loadConfig({ ...settings, ...platformSettings(auth) }).access, { mode: 'entra', platformAuthEnabled: true });
    assert.deepEqual(loadConfig(settings).access, { mode: 'entra', platformAuthEnabled: false });
    assert.deepEqual(loadConfig({ ...appSettings(template, {}), ...platformSettings(undefined) }).access, { mode: 'key', platformAuthEnabled: false });
  });

  test('a setting loadConfig does not read is reported (what a rename in src/config.ts looks like)', () => {
    const settings = appSettings(template, {});
    const renamed = (env: Record<string, string | undefined>) => loadConfig({ ...Object.fromEntries(Object.keys(settings).filter((k) => k !== 'INGEST_EVENTHUB_NAME').map((k) => [k, env[k]])) });
    assert.deepEqual(unreadSettings(settings, renamed), ['INGEST_EVENTHUB_NAME']);
  });

  test('outputs give the CLI the namespace, hubs, consumer groups, database host and schema', () => {
    const ev = evaluateTemplate(template, {});
    const scope = { parameters: ev.params, variables: ev.vars };
    const out = Object.fromEntries(Object.entries(template.outputs ?? {}).map(([k, o]) => [k, evaluateValue(o.value, scope)]));
    assert.equal(out.eventHubsNamespace, `${String(ev.params.eventHubsNamespaceName)}.servicebus.windows.net`);
    assert.deepEqual([out.ingestHub, out.deadLetterHub, out.schema], ['clickstream', 'clickstream-deadletter', 'hubsink']);
    assert.equal(out.databaseHost, `${String(ev.params.databaseServerName)}.postgres.database.azure.com`);
    for (const [k, o] of Object.entries(template.outputs ?? {})) assert.equal(typeof out[k], o.type === 'bool' ? 'boolean' : o.type, k);
  });

  test('docs/deploy.md lists exactly the resource types and API versions the template uses', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
    const listed = new Set([...doc.matchAll(/^\| `([A-Za-z.]+\/[A-Za-z0-9/]+)` \| `(\d{4}-\d{2}-\d{2}(?:-preview)?)` \|/gm)].map((m) => `${m[1]}@${m[2]}`));
    const inner = template.resources.flatMap((r) => (r.type === 'Microsoft.Resources/deployments' ? (r.properties as { template: Template }).template.resources : []));
    const used = new Set([...template.resources, ...inner].map((r) => `${r.type}@${r.apiVersion}`));
    const refs = new Set(
      strings(template)
        .filter((s) => isExpression(s.value))
        .flatMap((s) => calls(parseExpression(s.value)).filter((c) => c.name === 'reference' && c.args[1]?.kind === 'str').map((c) => (c.args[1] as { value: string }).value)),
    );
    for (const v of refs) assert.ok([...used].some((u) => u.endsWith(`@${v}`)), `reference() API version ${v} is one a resource uses`);
    assert.deepEqual([...listed].sort(), [...used].sort());
  });
});


