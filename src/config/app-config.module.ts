import { ConfigurableModuleBuilder, DynamicModule, Global, Module } from '@nestjs/common';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { Environment, validateEnvironment } from './environment';

export interface ConfigOptions {
  /** Values that win over every other source (tests, embedding hosts). */
  overrides?: Record<string, string | undefined>;
  /** Skip the process environment and `.env` (only `overrides`, defaults and what `envPrefix` / `envFile` add). */
  isolated?: boolean;
  /** Also read the process environment's variables that start with this prefix, without it (`CHAT_DATABASE_URL` → `DATABASE_URL`). */
  envPrefix?: string;
  /** A dotenv file read under the process environment; default `.env` when not isolated, none when isolated. */
  envFile?: string;
}

/**
 * The settings, from (weakest first) defaults, the dotenv file, the process environment and the
 * overrides; validated once. Not isolated (the standalone server): `.env` and every variable.
 * Isolated (embedded): only the overrides, plus the variables named with `envPrefix` and the
 * `envFile` entries when those are given (filtered by the prefix too).
 */
export function loadEnvironment(options: ConfigOptions = {}): Environment {
  const file = options.envFile ?? (options.isolated ? undefined : '.env');
  const fromFile = file && existsSync(file) ? parse(readFileSync(file)) : {};
  const fromProcess = options.isolated && options.envPrefix === undefined ? {} : process.env;
  const prefix = options.envPrefix;
  const read =
    prefix === undefined ? (vars: Record<string, string | undefined>) => vars : (vars: Record<string, string | undefined>) => withPrefix(vars, prefix);
  return validateEnvironment({ ...read(fromFile), ...read(fromProcess), ...(options.overrides ?? {}) });
}

/** The variables named `<prefix>NAME`, as `NAME`. */
function withPrefix(vars: Record<string, string | undefined>, prefix: string): Record<string, string | undefined> {
  if (!prefix) throw new Error('envPrefix must not be empty: leave it out to read no environment variables');
  const picked: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(vars)) if (key.startsWith(prefix)) picked[key.slice(prefix.length)] = value;
  return picked;
}

const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } = new ConfigurableModuleBuilder<ConfigOptions>({ moduleName: 'AppConfig' })
  .setClassMethodName('forRoot')
  .build();

/** The token of `AppConfigModule`'s options (`forRoot`'s value, or what `forRootAsync` makes). */
export const APP_CONFIG_OPTIONS = MODULE_OPTIONS_TOKEN;

/**
 * Provides the validated `Environment` as an injectable class. Nothing else reads `process.env`,
 * and nothing writes to it, so several apps with different settings can share one process.
 * `forRoot(options)`, or `forRootAsync({ imports, inject, useFactory | useClass | useExisting })`
 * with options made at start-up (e.g. from the host's `ConfigService`), from Nest's `ConfigurableModuleBuilder`.
 */
@Global()
@Module({
  providers: [{ provide: Environment, inject: [APP_CONFIG_OPTIONS], useFactory: (options: ConfigOptions) => loadEnvironment(options) }],
  exports: [Environment],
})
export class AppConfigModule extends ConfigurableModuleClass {
  static forRoot(options: ConfigOptions = {}): DynamicModule {
    return super.forRoot(options);
  }
}
