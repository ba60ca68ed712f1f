import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import { HostAuthGuard, HostRequest } from '../users/host-auth.guard';

const ORDERS = [
  { id: 1, owner: 'alice', item: 'keyboard' },
  { id: 2, owner: 'bob', item: 'monitor' },
  { id: 3, owner: 'alice', item: 'mouse' },
];

/** The host's business routes, behind its own guard. */
@Controller('api/orders')
@UseGuards(HostAuthGuard)
export class OrdersController {
  @Get()
  list(@Req() req: HostRequest) {
    return { orders: ORDERS.filter((order) => order.owner === req.hostUser!.id) };
  }
}

/** A public route of the host: the chat's guard must not reach it. */
@Controller('api/status')
export class StatusController {
  @Get()
  status() {
    return { ok: true };
  }
}
