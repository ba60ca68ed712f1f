import {
  ConfigurableModuleAsyncOptions,
  ConfigurableModuleBuilder,
  DynamicModule,
  Module,
  ModuleMetadata,
  NestModule,
  Provider,
  SetMetadata,
  Type,
  UseFilters,
  UseGuards,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { MODULE_METADATA } from '@nestjs/common/constants';
import { ApplicationConfig, RouterModule } from '@nestjs/core';
import { AuthGuard } from './auth/auth.guard';
import { AuthModule } from './auth/auth.module';
import { IS_PUBLIC } from './auth/auth.decorators';
import { SessionUserResolver, UserResolver } from './auth/user-resolver';
import { ChatSystemRoute } from './common/chat-system-route';
import { applyGlobalPrefix } from './common/global-prefix';
import { ChatModule } from './chat/chat.module';
import { HttpErrorFilter } from './common/http-error.filter';
import { MountPoint, normalizePath } from './common/mount';
import { PageRenderer } from './common/page-renderer';
import { AppConfigModule, ConfigOptions } from './config/app-config.module';
import { Environment } from './config/environment';
import { HealthModule } from './health/health.module';
import { DeepSeekProvider } from './llm/deepseek.provider';
import { LlmModule } from './llm/llm.module';
import { LlmProvider } from './llm/llm.provider';
import { MetricsModule } from './metrics/metrics.module';
import { RedisModule } from './redis/redis.module';
import { SolverModule } from './solver/solver.module';
import { StorageModule } from './storage/storage.module';
import { frameRoutesOf } from './transport/frame-gateway.decorator';
import { TransportModule } from './transport/transport.module';

/** The settings of `Environment` as plain values (numbers may be numbers). */
export type ChatSystemSettings = { [K in keyof Environment]?: Environment[K] | string };

/** Runtime configuration: what `forRootAsync`'s factory returns. */
export interface ChatSystemConfig {
  /** The settings, by the names of the environment variables; they win over every other source. */
  settings?: ChatSystemSettings;
  /**
   * Also read the process environment's variables with this prefix, e.g. `'CHAT_'`: `CHAT_DATABASE_URL`
   * becomes `DATABASE_URL`. Without it the module reads no environment variable at all.
   */
  envPrefix?: string;
  /**
   * Default `true`: only `settings` (and `envPrefix`, `envFile` when given) count, never the host's
   * own `DATABASE_URL`, `PORT`, … `false` reads `.env` and the whole process environment, as the
   * standalone server does (what earlier versions did by default).
   */
  isolated?: boolean;
  /** A dotenv file to read (filtered by `envPrefix` when given); default none (`.env` when `isolated: false`). */
  envFile?: string;
}

/** How the chat system sits in the host app: fixed when the module is built. */
export interface ChatSystemMounting {
  /** Prefix of every page, API route and asset, e.g. `'/assistant'`; default none. */
  routePrefix?: string;
  /** Where the socket is served; default `WS_PATH` (`/ws`). Handlers keep declaring `WS_PATH`. */
  wsPath?: string;
  /** The model client bound to the `LlmProvider` port (class or instance); default DeepSeekProvider. */
  llmProvider?: Type<LlmProvider> | LlmProvider;
  /** Who sends a request (class or instance); default our accounts (session cookie). When given,
   * our sign-up/login routes are left out and `AUTH_MODE` is not used. */
  userResolver?: Type<UserResolver> | UserResolver;
  /**
   * Metadata we put on our routes so that a host's global guard lets them through, e.g. the Nest
   * JWT sample's `@Public()`: `{ key: 'isPublic' }` (value default `true`). `routes: 'public'`
   * (default) marks the routes anyone may reach (health, share pages, sign-in and sign-up);
   * `'all'` marks every route of ours, for a host whose guard should leave our routes to our own
   * AuthGuard (our accounts, or your `userResolver`). Our AuthGuard still runs on each of them.
   * Our socket's frame handlers always get it: their user was checked at the upgrade. Like any
   * decorator's, the metadata is on our classes, so it holds for every app of the process.
   */
  hostPublicMetadata?: { key: string | symbol; value?: unknown; routes?: 'public' | 'all' };
  /**
   * A script of the host that every page of ours loads before its own (same origin: the pages'
   * CSP allows only `'self'`). A token-based host defines `window.chatSystem = { getToken }` in it
   * (`getToken()` returns the token or a promise of it): the pages then send it as
   * `Authorization: Bearer …` on their requests and as a `Sec-WebSocket-Protocol` on the socket,
   * and a page opened without credentials loads itself again with the token.
   */
  pageScript?: string;
  /** Modules that the classes given above (and the async factory) inject from. */
  imports?: ModuleMetadata['imports'];
}

export interface ChatSystemOptions extends ChatSystemConfig, ChatSystemMounting {}

/** What a `forRootAsync({ useClass })` or `useExisting` class implements. */
export interface ChatSystemConfigFactory {
  createChatSystemConfig(): ChatSystemConfig | Promise<ChatSystemConfig>;
}

/**
 * `forRootAsync`'s options: the mounting ones (static), and the runtime `ChatSystemConfig` from
 * `useFactory` (with `inject`), `useClass` or `useExisting` (a `ChatSystemConfigFactory`); `imports`
 * serve both the factory and the classes given as `llmProvider`/`userResolver`.
 */
export interface ChatSystemAsyncOptions extends ConfigurableModuleAsyncOptions<ChatSystemConfig, 'createChatSystemConfig'>, ChatSystemMounting {}

/** Every mounting option, so that Nest's builder keeps them out of the runtime config. */
const MOUNTING_DEFAULTS: Record<keyof ChatSystemMounting, undefined> = {
  routePrefix: undefined,
  wsPath: undefined,
  llmProvider: undefined,
  userResolver: undefined,
  hostPublicMetadata: undefined,
  pageScript: undefined,
  imports: undefined,
};

const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN } = new ConfigurableModuleBuilder<ChatSystemConfig>({ moduleName: 'ChatSystem' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createChatSystemConfig')
  .setExtras<ChatSystemMounting>(MOUNTING_DEFAULTS, (definition, mounting) => mountChatSystem(definition, mounting))
  .build();

/** The token of the runtime `ChatSystemConfig` (`forRoot`'s settings, or what `forRootAsync` makes). */
export const CHAT_SYSTEM_CONFIG = MODULE_OPTIONS_TOKEN;

/**
 * The whole chat system as one module: `/ws` with the chat, stop and Solver gateways, the pages, the
 * JSON APIs, health and metrics. The standalone server (`AppModule`) is just a host of it.
 *
 * `forRoot(options)` and `forRootAsync(options)` come from Nest's `ConfigurableModuleBuilder`: the
 * runtime config (`settings`, `envPrefix`, …) is a provider, made by a factory or class when async;
 * the mounting options are its extras, static because Nest builds routes before factories run.
 *
 * Global: a host's own modules can inject `ConnectionRegistry`, `Fanout`, `LlmProvider`,
 * `ChatService`, … and add gateways on `WS_PATH` without touching this package.
 */
@Module({})
export class ChatSystemModule extends ConfigurableModuleClass implements NestModule {
  constructor(
    private readonly mount: MountPoint,
    private readonly appConfig: ApplicationConfig,
  ) {
    super();
  }

  /** At init, before Nest registers routes: the host's global prefix is final now, whatever the order of its calls. */
  configure(): void {
    applyGlobalPrefix(this.mount, this.appConfig);
  }

  static forRoot(options: ChatSystemOptions = {}): DynamicModule {
    return super.forRoot(options);
  }

  /** Settings from a factory or class (e.g. over `ConfigService`); the mounting options stay static (Nest builds routes before factories run). */
  static forRootAsync(options: ChatSystemAsyncOptions): DynamicModule {
    return super.forRootAsync(options);
  }
}

/** The builder's module (the config provider, and the async `imports`) with everything else of ours. */
function mountChatSystem(definition: DynamicModule, options: ChatSystemMounting): DynamicModule {
  const accounts = !options.userResolver;
  const mounting = { routePrefix: options.routePrefix, wsPath: options.wsPath, accounts, pageScript: options.pageScript };
  const routePrefix = normalizePath(options.routePrefix);
  const features = [AuthModule.forRoot({ accounts }), ChatModule, SolverModule, HealthModule, MetricsModule];
  const providers = new Set<Type>();
  const withRoutes = modulesWithControllers(features, providers);
  for (const controllers of withRoutes.values()) controllers.forEach(scopeToChatSystem);
  // Our gateways carry CHAT_SYSTEM_ROUTE too: a host's global interceptors also run on our frames.
  providers.forEach(markGateway);
  const hostPublic = options.hostPublicMetadata;
  if (hostPublic) {
    for (const controllers of withRoutes.values()) controllers.forEach((c) => markForHost(c, hostPublic));
    // Our frame handlers too: the socket's user was checked at the upgrade (UpgradeAuth), and a host
    // guard made for HTTP requests cannot read a frame.
    providers.forEach((provider) => markForHost(provider, { ...hostPublic, routes: 'frames' }));
  }
  const routes = routePrefix ? [RouterModule.register([...withRoutes.keys()].map((module) => ({ path: routePrefix, module })))] : [];
  // The settings, validated once by AppConfigModule (global: every module injects `Environment`).
  const config = AppConfigModule.forRootAsync({ inject: [CHAT_SYSTEM_CONFIG], useFactory: toConfigOptions });
  return {
    ...definition,
    global: true,
    imports: [
      ...(definition.imports ?? []), // forRootAsync's `imports`
      config,
      StorageModule,
      RedisModule,
      TransportModule,
      LlmModule,
      ...features,
      ...routes,
      ...(options.imports ?? []), // forRoot's `imports`
    ],
    providers: [
      ...(definition.providers ?? []),
      // One per app (its global prefix is its own), even when several apps share this module.
      { provide: MountPoint, useFactory: () => new MountPoint(mounting) },
      PageRenderer,
      bind(LlmProvider, options.llmProvider ?? DeepSeekProvider),
      bind(UserResolver, options.userResolver ?? SessionUserResolver),
    ],
    exports: [CHAT_SYSTEM_CONFIG, MountPoint, PageRenderer, LlmProvider, UserResolver, ChatModule, SolverModule],
  };
}

function toConfigOptions(config: ChatSystemConfig = {}): ConfigOptions {
  const overrides: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(config.settings ?? {})) overrides[key] = value === undefined ? undefined : String(value);
  return { overrides, isolated: config.isolated ?? true, envPrefix: config.envPrefix, envFile: config.envFile };
}

function bind<T extends object>(port: abstract new (...args: never[]) => T, given: Type<T> | T): Provider {
  return typeof given === 'function' ? { provide: port, useClass: given } : { provide: port, useValue: given };
}

type ModuleLike = Type | DynamicModule;

/** Every module class under `roots` (following imports) that declares controllers, with them; their class providers into `providers`. */
function modulesWithControllers(roots: ModuleLike[], providers: Set<Type> = new Set()): Map<Type, Type[]> {
  const found = new Map<Type, Type[]>();
  const seen = new Set<unknown>();
  const visit = (entry: unknown): void => {
    if (!entry || seen.has(entry)) return;
    seen.add(entry);
    const dynamic = typeof entry === 'object' && 'module' in entry ? (entry as DynamicModule) : undefined;
    const type = (dynamic?.module ?? entry) as Type;
    if (typeof type !== 'function') return; // forwardRef or a promise: not ours
    const meta = <T>(key: string): T[] => (Reflect.getMetadata(key, type) as T[] | undefined) ?? [];
    const controllers = [...meta<Type>(MODULE_METADATA.CONTROLLERS), ...((dynamic?.controllers as Type[]) ?? [])];
    if (controllers.length) found.set(type, [...(found.get(type) ?? []), ...controllers]);
    for (const provider of [...meta<unknown>(MODULE_METADATA.PROVIDERS), ...(dynamic?.providers ?? [])]) {
      if (typeof provider === 'function') providers.add(provider as Type);
    }
    for (const child of [...meta(MODULE_METADATA.IMPORTS), ...(dynamic?.imports ?? [])]) visit(child);
  };
  roots.forEach(visit);
  return found;
}

const scoped = new WeakSet<Type>();

/**
 * Puts our guard, error filter and validation on a controller of ours, instead of app-wide
 * (APP_GUARD, global filters and pipes would also hold an embedding host's own routes). Decorators are
 * functions: applying them here, before Nest scans, is what `@UseGuards(AuthGuard)` on the class does.
 * Once per class, whatever the number of apps built in this process.
 */
function scopeToChatSystem(controller: Type): void {
  if (scoped.has(controller)) return;
  scoped.add(controller);
  ChatSystemRoute()(controller);
  UseGuards(AuthGuard)(controller);
  UseFilters(HttpErrorFilter)(controller);
  UsePipes(new ValidationPipe({ whitelist: true, transform: true }))(controller);
}

const marked = new WeakMap<Type, Set<unknown>>();

type HostMarking = Omit<NonNullable<ChatSystemMounting['hostPublicMetadata']>, 'routes'> & { routes?: 'public' | 'all' | 'frames' };

/** Puts the host's "public" metadata on our public routes (all of them, or a gateway's frame handlers), once per class and key. */
function markForHost(controller: Type, option: HostMarking): void {
  const keys = marked.get(controller) ?? new Set<unknown>();
  marked.set(controller, keys);
  const tag = `${String(option.key)}:${option.routes ?? 'public'}`;
  if (keys.has(tag)) return;
  keys.add(tag);
  const classPublic = Reflect.getMetadata(IS_PUBLIC, controller) === true;
  const proto = controller.prototype as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    if (name === 'constructor' || typeof descriptor?.value !== 'function') continue;
    const handler = descriptor.value as object;
    const mark =
      option.routes === 'frames'
        ? frameRoutesOf(handler).length > 0
        : option.routes === 'all' || classPublic || Reflect.getMetadata(IS_PUBLIC, handler) === true;
    if (mark) {
      SetMetadata(option.key, option.value ?? true)(proto, name, descriptor);
    }
  }
}

/** CHAT_SYSTEM_ROUTE on a provider with `@OnFrame` handlers (once per class). */
function markGateway(provider: Type): void {
  if (scoped.has(provider)) return;
  const proto = provider.prototype as Record<string, unknown>;
  const handlers = Object.getOwnPropertyNames(proto).filter((name) => {
    const value = Object.getOwnPropertyDescriptor(proto, name)?.value as unknown;
    return name !== 'constructor' && typeof value === 'function' && frameRoutesOf(value).length > 0;
  });
  if (!handlers.length) return;
  scoped.add(provider);
  ChatSystemRoute()(provider);
}
