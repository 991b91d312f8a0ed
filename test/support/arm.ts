/**
 * Just enough of Azure Resource Manager's template language to check infra/azuredeploy.json here,
 * where nothing can be deployed: a parser for the bracket expressions, and an evaluator for the
 * functions the template uses. Runtime values (`reference()`) come from a table of the documented
 * response shapes, so a property the template reads that the table does not know fails the test.
 */
import { createHash } from 'node:crypto';

export type Expr =
  | { kind: 'str'; value: string }
  | { kind: 'num'; value: number }
  | { kind: 'call'; name: string; args: Expr[] }
  | { kind: 'prop'; target: Expr; name: string }
  | { kind: 'index'; target: Expr; index: Expr };

/** A JSON string value is an expression when it is `[...]` and not an escaped `[[...`. */
export function isExpression(s: string): boolean {
  return s.startsWith('[') && s.endsWith(']') && !s.startsWith('[[');
}

export function parseExpression(text: string): Expr {
  if (!isExpression(text)) throw new Error(`not an expression: ${text}`);
  const src = text.slice(1, -1);
  let i = 0;
  const ws = (): void => {
    while (i < src.length && /\s/.test(src[i] as string)) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`${what} at ${i} in ${text}`);
  };
  const expect = (c: string): void => {
    ws();
    if (src[i] !== c) fail(`expected '${c}'`);
    i++;
  };
  function primary(): Expr {
    ws();
    const c = src[i];
    if (c === "'") {
      let out = '';
      i++;
      for (;;) {
        if (i >= src.length) fail('unterminated string');
        if (src[i] === "'" && src[i + 1] === "'") {
          out += "'";
          i += 2;
        } else if (src[i] === "'") {
          i++;
          break;
        } else out += src[i++];
      }
      return { kind: 'str', value: out };
    }
    const num = /^-?\d+/.exec(src.slice(i));
    if (num) {
      i += num[0].length;
      return { kind: 'num', value: Number(num[0]) };
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (!id) return fail('expected a function call, string or number');
    i += id[0].length;
    expect('(');
    const args: Expr[] = [];
    ws();
    if (src[i] === ')') i++;
    else {
      for (;;) {
        args.push(expression());
        ws();
        if (src[i] === ',') i++;
        else if (src[i] === ')') {
          i++;
          break;
        } else fail("expected ',' or ')'");
      }
    }
    return { kind: 'call', name: id[0], args };
  }
  function expression(): Expr {
    let e = primary();
    for (;;) {
      ws();
      if (src[i] === '.') {
        i++;
        const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
        if (!id) fail('expected a property name');
        i += (id as RegExpExecArray)[0].length;
        e = { kind: 'prop', target: e, name: (id as RegExpExecArray)[0] };
      } else if (src[i] === '[') {
        i++;
        const index = expression();
        expect(']');
        e = { kind: 'index', target: e, index };
      } else return e;
    }
  }
  const e = expression();
  ws();
  if (i !== src.length) fail('unexpected text');
  return e;
}

/** Every function call in an expression, the branches of if() included. */
export function calls(e: Expr): Extract<Expr, { kind: 'call' }>[] {
  switch (e.kind) {
    case 'call':
      return [e, ...e.args.flatMap(calls)];
    case 'prop':
      return calls(e.target);
    case 'index':
      return [...calls(e.target), ...calls(e.index)];
    default:
      return [];
  }
}

/** Every string in a JSON value, with its path, keys excluded. */
export function strings(v: unknown, path = '$'): { path: string; value: string }[] {
  if (typeof v === 'string') return [{ path, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, k) => strings(x, `${path}[${k}]`));
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => strings(x, `${path}.${k}`));
  return [];
}

export const SUBSCRIPTION = '11111111-2222-3333-4444-555555555555';
export const TENANT = '99999999-8888-7777-6666-555555555555';
export const RESOURCE_GROUP = 'rg-hubsink';

/** What reference() returned: a runtime object whose properties the table below defines. */
export class Runtime {
  constructor(
    readonly id: string,
    readonly value: unknown,
  ) {}
}

/**
 * The documented shapes of what the template reads from resources at deployment time, with
 * placeholder values of the right form. `full` is what reference(id, api, 'Full') returns.
 */
export function runtimeOf(type: string, name: string, full: boolean): unknown {
  const last = name.split('/').at(-1) ?? name;
  const props: Record<string, unknown> = {
    'microsoft.web/sites': { defaultHostName: `${last}.azurewebsites.net` },
    'microsoft.storage/storageaccounts': { primaryEndpoints: { blob: `https://${last}.blob.core.windows.net/` } },
    'microsoft.insights/components': {
      ConnectionString: 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/',
    },
    'microsoft.eventhub/namespaces': { serviceBusEndpoint: `https://${last}.servicebus.windows.net:443/` },
    'microsoft.dbforpostgresql/flexibleservers': { fullyQualifiedDomainName: `${last}.postgres.database.azure.com` },
    'microsoft.dbforpostgresql/servergroupsv2': { serverNames: [{ name: `${last}-c`, fullyQualifiedDomainName: `c-${last}.q2x3y4z5.postgres.cosmos.azure.com` }] },
  };
  const p = props[type.toLowerCase()];
  if (p === undefined) throw new Error(`the test has no runtime shape for ${type}`);
  if (!full) return p;
  const identity = type.toLowerCase() === 'microsoft.web/sites' ? { identity: { type: 'SystemAssigned', principalId: 'aaaaaaaa-0000-4000-8000-00000000a99b', tenantId: TENANT } } : {};
  return { properties: p, ...identity };
}

export interface Declared {
  type: string;
  name: string;
  id: string;
}

export function resourceIdOf(type: string, names: readonly string[]): string {
  const types = type.split('/');
  const segs = [types[0], types[1], names[0]];
  for (let k = 2; k < types.length; k++) segs.push(types[k], names[k - 1]);
  if (names.length !== types.length - 1) throw new Error(`resourceId(${type}) needs ${types.length - 1} names, got ${names.length}`);
  return `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/${segs.join('/')}`;
}

function hash(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export interface Scope {
  parameters: Record<string, unknown>;
  variables: Record<string, unknown>;
  /** Called with every id a resourceId()/reference() names; the checker records and verifies them. */
  onResourceId?: (id: string, fn: string) => void;
}

const NUL = Symbol('null');

/** Evaluates a JSON value whose strings may be expressions (objects and arrays recursively). */
export function evaluateValue(v: unknown, scope: Scope): unknown {
  if (typeof v === 'string') return isExpression(v) ? evaluate(parseExpression(v), scope) : v.startsWith('[[') ? v.slice(1) : v;
  if (Array.isArray(v)) return v.map((x) => evaluateValue(x, scope));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, evaluateValue(x, scope)]));
  return v;
}

export function evaluate(e: Expr, scope: Scope): unknown {
  switch (e.kind) {
    case 'str':
    case 'num':
      return e.value;
    case 'prop':
    case 'index': {
      const t = evaluate(e.target, scope);
      const key = e.kind === 'prop' ? e.name : evaluate(e.index, scope);
      const base = t instanceof Runtime ? t.value : t;
      if (base === null || typeof base !== 'object' || !(String(key) in base)) {
        throw new Error(`${t instanceof Runtime ? `reference(${t.id})` : JSON.stringify(t)} has no property ${String(key)}`);
      }
      const v = (base as Record<string, unknown>)[String(key)];
      return t instanceof Runtime && v !== null && typeof v === 'object' ? new Runtime(t.id, v) : v;
    }
    case 'call':
      return call(e, scope);
  }
}

function str(v: unknown, fn: string): string {
  if (typeof v !== 'string') throw new Error(`${fn}() expects a string, got ${JSON.stringify(v)}`);
  return v;
}

function call(e: Extract<Expr, { kind: 'call' }>, scope: Scope): unknown {
  const name = e.name.toLowerCase();
  // if() evaluates only the branch its condition picks, as Resource Manager does.
  if (name === 'if') {
    if (e.args.length !== 3) throw new Error('if() takes 3 arguments');
    return evaluate(e.args[0] as Expr, scope) === true ? evaluate(e.args[1] as Expr, scope) : evaluate(e.args[2] as Expr, scope);
  }
  const a = e.args.map((x) => evaluate(x, scope));
  switch (name) {
    case 'parameters': {
      const k = str(a[0], name);
      if (!(k in scope.parameters)) throw new Error(`parameters('${k}') is not declared`);
      return scope.parameters[k];
    }
    case 'variables': {
      const k = str(a[0], name);
      if (!(k in scope.variables)) throw new Error(`variables('${k}') is not declared`);
      return scope.variables[k];
    }
    case 'resourcegroup':
      return { id: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}`, name: RESOURCE_GROUP, location: 'westeurope' };
    case 'subscription':
      return { id: `/subscriptions/${SUBSCRIPTION}`, subscriptionId: SUBSCRIPTION, tenantId: TENANT };
    case 'uniquestring':
      return BigInt(`0x${hash(a).slice(0, 16)}`).toString(36).padStart(13, 'a').slice(0, 13);
    case 'guid': {
      const h = hash(a);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
    }
    case 'format':
      return str(a[0], name).replace(/\{(\d+)\}/g, (_, n: string) => {
        const v = a[Number(n) + 1];
        if (v === undefined) throw new Error(`format(): no argument {${n}}`);
        return typeof v === 'object' ? JSON.stringify(v) : String(v as string | number | boolean);
      });
    case 'concat':
      return Array.isArray(a[0]) ? a.flat() : a.map((x) => String(x)).join('');
    case 'tolower':
      return str(a[0], name).toLowerCase();
    case 'take':
      return Array.isArray(a[0]) ? a[0].slice(0, Number(a[1])) : str(a[0], name).slice(0, Number(a[1]));
    case 'replace':
      return str(a[0], name).split(str(a[1], name)).join(str(a[2], name));
    case 'equals':
      return JSON.stringify(a[0]) === JSON.stringify(a[1]);
    case 'not':
      return a[0] !== true;
    case 'and':
      return a.every((x) => x === true);
    case 'or':
      return a.some((x) => x === true);
    case 'empty':
      return a[0] === '' || a[0] === NUL || (Array.isArray(a[0]) && a[0].length === 0) || (typeof a[0] === 'object' && a[0] !== null && Object.keys(a[0]).length === 0);
    case 'true':
      return true;
    case 'false':
      return false;
    case 'resourceid': {
      const id = resourceIdOf(str(a[0], name), a.slice(1).map((x) => str(x, name)));
      scope.onResourceId?.(id, 'resourceId');
      return id;
    }
    case 'subscriptionresourceid':
      return `/subscriptions/${SUBSCRIPTION}/providers/${str(a[0], name)}/${a.slice(1).map((x) => str(x, name)).join('/')}`;
    case 'reference': {
      const id = str(a[0], name);
      if (!id.startsWith('/subscriptions/')) throw new Error(`reference() by name (${id}): use resourceId() so the target is checked`);
      scope.onResourceId?.(id, 'reference');
      const m = /\/providers\/(.+)$/.exec(id);
      const parts = (m?.[1] ?? '').split('/');
      const type = [parts[0], ...parts.slice(1).filter((_, k) => k % 2 === 0)].join('/');
      const resName = parts.slice(1).filter((_, k) => k % 2 === 1).join('/');
      return new Runtime(id, runtimeOf(type, resName, a[2] === 'Full'));
    }
    default:
      throw new Error(`the test's evaluator does not implement ${e.name}()`);
  }
}

/** Variables are evaluated lazily in declaration order; one may use another. */
export function evaluateVariables(defs: Record<string, unknown>, parameters: Record<string, unknown>, onResourceId?: Scope['onResourceId']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const scope: Scope = { parameters, variables: out, ...(onResourceId ? { onResourceId } : {}) };
  for (const [k, v] of Object.entries(defs)) out[k] = evaluateValue(v, scope);
  return out;
}

/** Parameter values: the given ones, else the defaults (which may be expressions themselves). */
export function parameterValues(defs: Record<string, { defaultValue?: unknown }>, given: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, def] of Object.entries(defs)) {
    if (k in given) out[k] = given[k];
    else if ('defaultValue' in def) out[k] = evaluateValue(def.defaultValue, { parameters: out, variables: {} });
    else throw new Error(`parameter ${k} has no default and no value`);
  }
  for (const k of Object.keys(given)) if (!(k in defs)) throw new Error(`parameter ${k} is not declared`);
  return out;
}
