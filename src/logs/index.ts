/**
 * logs: containers' output. `LogCollector` follows stdout/stderr of every managed container into
 * `LogStore` (its own SQLite database with an FTS5 index), exactly once across server restarts thanks
 * to a per-container checkpoint written with each batch; the store answers filtered, paginated,
 * newest-first searches, feeds live tails and applies retention by age and size.
 */
export {
  LogStore, parseTimeNs, formatTimeNs, dockerSince, detectLevel, compileText, matchesFilter,
  type LogLevel, type LogSource, type IngestLine, type LogCheckpoint, type LogBatch, type StoredLine, type LogFilter,
  type LogQuery, type LogPage, type RetentionLimits, type LogStoreOptions, type LogStoreStats,
} from './log-store.ts';
export { LogCollector, type LogCollectorOptions, type CollectedContainer } from './log-collector.ts';
