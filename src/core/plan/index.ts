/**
 * plan: pure planners. Given desired and observed state they return actions; they never do I/O.
 */
export * from './service-plan.ts';
