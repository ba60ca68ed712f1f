import { Module } from '@nestjs/common';
import { ChatSummarizer } from './chat-summarizer';
import { SummarizeGateway } from './summarize.gateway';

/** One new message type: a module with a gateway on WS_PATH. ChatService and LlmProvider come from ChatSystemModule (global). */
@Module({
  providers: [SummarizeGateway, ChatSummarizer],
})
export class SummarizeModule {}
