/**
 * The log every long-running part writes to (consumers, the runner, the local stack), and the one
 * the commands give it: lines on stderr.
 */
import { escapeControls } from './terminal.js';

export type LogLevel = 'info' | 'warn' | 'error' | 'debug';
export type Logger = (level: LogLevel, message: string) => void;

export function stderrLogger(opts: { verbose?: boolean; write?: (s: string) => void } = {}): Logger {
  const write = opts.write ?? ((s: string) => void process.stderr.write(s));
  return (level: LogLevel, message: string) => {
    if (level === 'debug' && !opts.verbose) return;
    // One line per message, whatever an error quoted from an event.
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${escapeControls(message)}\n`);
  };
}
