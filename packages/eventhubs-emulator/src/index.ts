/**
 * Local Event Hubs emulator over AMQP 1.0, for development and tests: the real
 * `@azure/event-hubs` client connects to it with `UseDevelopmentEmulator=true`.
 */
export { startEmulator, DEFAULT_KEY, DEFAULT_KEY_NAME } from './server.js';
export { MAX_MESSAGE_SIZE } from './links.js';
export type { Emulator, EmulatorOptions, EmulatorFaults, StoredEvent } from './server.js';
export type { EmulatorHubSpec } from './hubs.js';
export { validateHubSpec } from './hubs.js';
export { DEFAULT_CONSUMER_GROUP } from './hubs.js';
export { partitionForKey } from './jenkins.js';
