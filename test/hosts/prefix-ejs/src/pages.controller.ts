import { Controller, Get, Render } from '@nestjs/common';

/** The host's own page, an EJS view. */
@Controller()
export class PagesController {
  @Get('hello')
  @Render('index')
  hello() {
    return { title: 'The shop', items: ['hat', 'scarf'] };
  }
}
