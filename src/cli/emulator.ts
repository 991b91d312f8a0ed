/**
 * `hubsink emulator`: runs the local Event Hubs emulator in the foreground on loopback. The
 * connection strings go to stdout (one line per hub, or JSON with --json) so scripts can capture
 * them; status goes to stderr. Ctrl-C (SIGINT) or SIGTERM stops it.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { startEmulator, DEFAULT_KEY, DEFAULT_KEY_NAME, validateHubSpec, type EmulatorHubSpec } from '@hubsink/eventhubs-emulator';
import { parsePort, parsePositiveInt, resolveSecret, UsageError } from './program.js';

/** `name:partitions`, e.g. `clickstream:4`. */
export function parseHub(value: string, previous: EmulatorHubSpec[] = []): EmulatorHubSpec[] {
  const m = /^([^:]+):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected NAME:PARTITIONS, e.g. clickstream:4');
  const spec = { name: m[1] as string, partitions: Number(m[2]) };
  try {
    validateHubSpec(spec);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
  if (previous.some((h) => h.name.toLowerCase() === spec.name.toLowerCase())) throw new InvalidArgumentError(`hub '${spec.name}' is given twice`);
  return [...previous, spec];
}


function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

interface EmulatorCliOptions {
  port: number;
  hub?: EmulatorHubSpec[];
  consumerGroup?: string[];
  keyName: string;
  key?: string;
  keyFile?: string;
  opaqueOffsets?: boolean;
  retentionEvents?: number;
  retentionBytes: number;
  json?: boolean;
}

const DEFAULT_RETENTION_BYTES = 64 * 1024 * 1024;

const DEFAULT_HUBS: EmulatorHubSpec[] = [
  { name: 'clickstream', partitions: 4 },
  { name: 'clickstream-deadletter', partitions: 2 },
];

export function register(program: Command): void {
  program
    .command('emulator')
    .description('run a local Event Hubs emulator (AMQP 1.0 on 127.0.0.1) that the Azure SDK connects to with UseDevelopmentEmulator=true')
    .option('--port <port>', 'TCP port on 127.0.0.1 (0 = any free port)', parsePort, 5672)
    .option('--hub <name:partitions>', 'an event hub to create; repeat for several (default: clickstream:4 and clickstream-deadletter:2)', parseHub)
    .option('--consumer-group <name>', 'a consumer group created on every hub besides $Default; repeatable', collect)
    .option('--key-name <name>', 'shared access key name clients must use', DEFAULT_KEY_NAME)
    .option('--key <key>', 'shared access key clients must sign with (or HUBSINK_EMULATOR_KEY; a fixed development key by default)')
    .option('--key-file <path>', 'read --key from this file')
    .option('--opaque-offsets', 'hand out non-numeric offsets, so code that parses offsets as numbers fails early')
    .option('--retention-events <n>', 'keep at most this many events per partition (oldest dropped first)', parsePositiveInt)
    .option('--retention-bytes <n>', 'keep at most this many bytes of events per partition (default 64 MiB, so long runs stay bounded)', parsePositiveInt, DEFAULT_RETENTION_BYTES)
    .option('--json', 'print {host, port, hubs: [{name, partitions, consumerGroups, connectionString}]} instead of plain connection strings')
    .addHelpText(
      'after',
      '\nExamples:\n  hubsink emulator --port 5672 --hub clickstream:4 --hub clickstream-deadletter:2 --consumer-group hubsink-replay\n  hubsink emulator --port 0 --json   # any free port; read it from the output\n',
    )
    .action(async (opts: EmulatorCliOptions) => {
      const groups = opts.consumerGroup ?? [];
      const hubs = (opts.hub ?? DEFAULT_HUBS).map((h) => ({ ...h, consumerGroups: groups }));
      for (const h of hubs) {
        try {
          validateHubSpec(h);
        } catch (err) {
          throw new UsageError(err instanceof Error ? err.message : String(err));
        }
      }
      const key = resolveSecret('key', opts.key, opts.keyFile, 'HUBSINK_EMULATOR_KEY') ?? DEFAULT_KEY;
      if (key.length === 0 || opts.keyName.length === 0) throw new UsageError('--key and --key-name must not be empty');
      const retention = { maxEventsPerPartition: opts.retentionEvents, maxBytesPerPartition: opts.retentionBytes };
      let emulator;
      try {
        emulator = await startEmulator({ port: opts.port, hubs, keyName: opts.keyName, key, opaqueOffsets: opts.opaqueOffsets, retention });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new Error(`port ${opts.port} on 127.0.0.1 is already in use (try --port 0 for any free port)`);
        throw err;
      }
      const emu = emulator;
      // Listen before printing: a script may send the signal as soon as it reads the output.
      let resolveStop: (name: string) => void = () => undefined;
      const stopSignal = new Promise<string>((resolve) => (resolveStop = resolve));
      let received = false;
      const onSignal = (name: string): void => {
        // A second Ctrl-C does not wait for the connections to close.
        if (received) {
          process.stderr.write(`hubsink: ${name} again: exiting now\n`);
          process.exit(130);
        }
        received = true;
        resolveStop(name);
      };
      const onInt = (): void => onSignal('SIGINT');
      const onTerm = (): void => onSignal('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      if (opts.json) {
        const out = {
          host: emu.host,
          port: emu.port,
          hubs: hubs.map((h) => ({ name: h.name, partitions: h.partitions, consumerGroups: ['$Default', ...groups], connectionString: emu.connectionString(h.name) })),
        };
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else {
        for (const h of hubs) process.stdout.write(`${emu.connectionString(h.name)}\n`);
      }
      const summary = hubs.map((h) => `${h.name} (${h.partitions} partitions)`).join(', ');
      process.stderr.write(
        `hubsink: Event Hubs emulator on ${emu.host}:${emu.port}: ${summary}; consumer groups $Default${groups.map((g) => `, ${g}`).join('')}. Ctrl-C to stop.\n`,
      );
      const signal = await stopSignal;
      process.stderr.write(`hubsink: ${signal}: stopping the emulator\n`);
      await emu.stop();
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    });
}
