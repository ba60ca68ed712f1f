import { Body, Controller, Post } from '@nestjs/common';
import { CreateItemDto } from './create-item.dto';

@Controller('items')
export class ItemsController {
  @Post()
  create(@Body() dto: CreateItemDto) {
    return { created: dto.name };
  }
}
