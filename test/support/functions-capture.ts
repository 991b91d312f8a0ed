/**
 * Captures what `app.eventHub/app.timer/app.http/app.generic` register, without the Functions host.
 * The @azure/functions library reaches the host through the virtual module `@azure/functions-core`
 * (required lazily on the first registration); substituting that module is the only way to read the
 * metadata the host would get. It is internal to @azure/functions 4.16.5, which package.json pins.
 * Import this module before any src/functions module, in a test file of its own.
 */
import Module from 'node:module';

export interface CapturedBinding {
  type: string;
  direction: string;
  [key: string]: unknown;
}

export interface CapturedFunction {
  name: string;
  bindings: Record<string, CapturedBinding>;
  retryOptions?: Record<string, unknown>;
  handler: (...args: unknown[]) => unknown;
}

export const captured: CapturedFunction[] = [];

interface CoreMetadata {
  name: string;
  bindings: Record<string, CapturedBinding>;
  retryOptions?: Record<string, unknown>;
}

const fakeCore = {
  setProgrammingModel: (): void => undefined,
  getProgrammingModel: (): undefined => undefined,
  registerHook: () => ({ dispose: (): void => undefined }),
  log: (): void => undefined,
  registerFunction(metadata: CoreMetadata, handler: (...args: unknown[]) => unknown) {
    captured.push({ name: metadata.name, bindings: metadata.bindings, ...(metadata.retryOptions ? { retryOptions: metadata.retryOptions } : {}), handler });
    return { dispose: (): void => undefined };
  },
};

type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const M = Module as unknown as { _load: Loader };
const original = M._load;
M._load = function (this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
  if (request === '@azure/functions-core') return fakeCore;
  return original.call(this, request, parent, isMain);
};

export function triggerOf(fn: CapturedFunction): CapturedBinding {
  const t = Object.values(fn.bindings).find((b) => /trigger$/i.test(b.type));
  if (!t) throw new Error(`function ${fn.name} has no trigger binding`);
  return t;
}
