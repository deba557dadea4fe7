import type { ParsedConfig } from '../config/schema.ts';

// The part of the configuration a reload may change.
export type GatewayConfig = Pick<ParsedConfig, 'pools' | 'routes' | 'defaultRoutes'> & {
  /** The external CA's pool, which the default `/puppet-ca/` route then goes to; undefined for the built-in CA. */
  caPool?: string | undefined;
};
export type PoolConfig = ParsedConfig['pools'][string];
