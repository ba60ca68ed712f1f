import { Injectable } from '@nestjs/common';
import { ChatService, LlmProvider, MessageView } from 'nest-chat-system';
import { filter, from, map, Observable, switchMap } from 'rxjs';

/** Summaries of a user's own chat, written by the chat's model. */
@Injectable()
export class ChatSummarizer {
  constructor(
    private readonly chats: ChatService,
    private readonly llm: LlmProvider,
  ) {}

  /** The summary's text as the model writes it; `not_found` for a chat the user does not own. */
  summarize(chatId: string, userId: string): Observable<string> {
    return from(this.chats.getChat(chatId, userId)).pipe(
      switchMap((chat) =>
        this.llm.stream({
          thinking: false,
          messages: [
            { role: 'system', content: 'Summarize the conversation in at most two sentences.' },
            { role: 'user', content: transcript(chat.messages) },
          ],
        }),
      ),
      filter((event) => event.type === 'content'),
      map((event) => (event as { text: string }).text),
    );
  }
}

function transcript(messages: MessageView[]): string {
  return messages.map((m) => `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}`).join('\n\n');
}
