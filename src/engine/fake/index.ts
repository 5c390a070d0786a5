/**
 * engine/fake: an in-memory Engine for unit tests of controllers, with hooks that simulate what a real
 * engine does by itself (containers dying, health flips, outages). Integration tests use the real
 * Docker Engine (engine/docker); this never replaces them.
 */
export { FakeEngine } from './fake-engine.ts';
