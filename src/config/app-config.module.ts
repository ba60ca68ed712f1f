import { DynamicModule, FactoryProvider, Global, Module, ModuleMetadata } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { Environment, validateEnvironment } from './environment';

export interface ConfigOptions {
  /** Values that win over `.env` and the process environment (tests, embedding hosts). */
  overrides?: Record<string, string | undefined>;
  /** Skip the process environment and `.env` entirely: only `overrides` and defaults (tests). */
  isolated?: boolean;
  envFile?: string;
}

/** Reads `.env` (if present) under the real environment, then the overrides; validates once. */
export function loadEnvironment(options: ConfigOptions = {}): Environment {
  const file = options.envFile ?? '.env';
  const fromFile = !options.isolated && existsSync(file) ? parse(readFileSync(file)) : {};
  const fromProcess = options.isolated ? {} : process.env;
  return validateEnvironment({ ...fromFile, ...fromProcess, ...(options.overrides ?? {}) });
}

/**
 * Provides the validated `Environment` as an injectable class. Nothing else reads `process.env`,
 * and nothing writes to it, so several apps with different settings can share one process.
 */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(options: ConfigOptions = {}): DynamicModule {
    return {
      module: AppConfigModule,
      providers: [{ provide: Environment, useValue: loadEnvironment(options) }],
      exports: [Environment],
    };
  }

  /** The same, with options made by a factory (e.g. from the host's `ConfigService`). */
  static forRootAsync(options: {
    imports?: ModuleMetadata['imports'];
    inject?: FactoryProvider['inject'];
    useFactory: (...args: any[]) => ConfigOptions | Promise<ConfigOptions>;
  }): DynamicModule {
    return {
      module: AppConfigModule,
      imports: options.imports ?? [],
      providers: [
        {
          provide: Environment,
          inject: options.inject ?? [],
          useFactory: async (...args: unknown[]) => loadEnvironment(await options.useFactory(...args)),
        },
      ],
      exports: [Environment],
    };
  }
}
