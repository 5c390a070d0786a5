import { pino, destination } from 'pino';
import type { Logger } from '../core/ports.ts';

/** The one structured logger (pino, JSON lines to stderr or a file descriptor). */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, destination({ fd: 2, sync: false })) as unknown as Logger;
}

/** A logger that drops everything (tests of pure units). */
export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() {
    return silentLogger;
  },
};
