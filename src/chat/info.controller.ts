import { Controller, Get, Header } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { LlmProvider } from '../llm/llm.provider';
import { UsageRepository } from '../storage/usage.repository';

@Controller('api')
export class InfoController {
  constructor(
    private readonly llm: LlmProvider,
    private readonly usage: UsageRepository,
  ) {}

  /** The model API's own list (cached by the provider), the configured default first. */
  @Get('models')
  async models() {
    const ids = await this.llm.listModels();
    return { default: this.llm.defaultModel, models: ids.map((id) => ({ id })) };
  }

  /** Totals of the model's own usage figures for every call made for the caller. */
  @Get('usage')
  @Header('Cache-Control', 'no-store')
  async totals(@CurrentUser() user: AuthUser) {
    const totals = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, messages: 0 };
    const calls = await this.usage.usageOf(user.id);
    for (const usage of calls.usage as Partial<Record<'prompt_tokens' | 'completion_tokens' | 'total_tokens', number>>[]) {
      totals.prompt_tokens += usage.prompt_tokens ?? 0;
      totals.completion_tokens += usage.completion_tokens ?? 0;
      totals.total_tokens += usage.total_tokens ?? 0;
    }
    // Answers only: Solver runs and titles count in the tokens, not here.
    totals.messages = calls.answers;
    return totals;
  }
}
