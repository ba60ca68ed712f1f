import { Global, Module } from '@nestjs/common';
import { Environment } from '../config/environment';
import { LlmSettings } from './llm.provider';

/**
 * The model settings from the environment. The `LlmProvider` port is bound by ChatSystemModule
 * (`DeepSeekProvider` unless the host brings its own), where the host's modules can serve its class.
 */
@Global()
@Module({
  providers: [
    {
      provide: LlmSettings,
      inject: [Environment],
      useFactory: (env: Environment): LlmSettings => ({
        apiKey: env.DEEPSEEK_API_KEY,
        baseUrl: env.DEEPSEEK_BASE_URL,
        model: env.DEEPSEEK_MODEL,
        timeoutMs: env.LLM_TIMEOUT_MS,
        maxRetries: env.LLM_MAX_RETRIES,
        retryBaseMs: env.LLM_RETRY_BASE_MS,
        thinkingField: env.LLM_THINKING_FIELD,
        reasoningEffort: env.LLM_REASONING_EFFORT,
      }),
    },
  ],
  exports: [LlmSettings],
})
export class LlmModule {}
