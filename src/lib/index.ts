/**
 * lib: generic helpers with no domain knowledge (backoff, atomic file writes, ids, deadlines).
 */
export {};
