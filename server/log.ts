import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** The root logger; subsystems take `logger.child({ subsystem })`, node work adds `{ node, mac }`. */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'rackseed' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A child logger for one node: every line about a node carries its name and MAC. */
export function nodeLogger(log: Logger, node: { name?: string; mac?: string }): Logger {
  return log.child({ ...(node.name ? { node: node.name } : {}), ...(node.mac ? { mac: node.mac } : {}) });
}
