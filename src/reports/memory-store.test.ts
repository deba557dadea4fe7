import { reportStoreConformance } from './store-conformance.ts';
import { MemoryReportStore } from './memory-store.ts';

// The in-memory store is held to the same behaviour as the SQLite one.

reportStoreConformance('memory', () => Promise.resolve(new MemoryReportStore()));
