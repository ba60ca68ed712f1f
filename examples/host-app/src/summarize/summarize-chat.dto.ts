import { IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';

/** `{"type": "summarize_chat", "chat_id": "<uuid>", "id"?: "<yours>"}` */
export class SummarizeChatDto {
  @IsOptional()
  @IsString()
  @MaxLength(64)
  id?: string;

  @IsUUID('all')
  chat_id: string;
}
