import { DynamicModule, Module } from '@nestjs/common';
import { ChatSystemModule } from './chat-system.module';
import { ConfigOptions } from './config/app-config.module';

/** The standalone server: a host of ChatSystemModule that owns the whole app (see `configureApp`). */
@Module({})
export class AppModule {
  static forRoot(config: ConfigOptions = {}): DynamicModule {
    return {
      module: AppModule,
      // Standalone, the environment is ours: `.env` and every variable (unless a test isolates it).
      imports: [
        ChatSystemModule.forRoot({ settings: config.overrides, isolated: config.isolated ?? false, envPrefix: config.envPrefix, envFile: config.envFile }),
      ],
    };
  }
}
