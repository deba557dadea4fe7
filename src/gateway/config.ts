import type { ParsedConfig } from '../config/schema.ts';

// The part of the configuration a reload may change.
export type GatewayConfig = Pick<ParsedConfig, 'pools' | 'routes' | 'defaultRoutes'>;
export type PoolConfig = ParsedConfig['pools'][string];
