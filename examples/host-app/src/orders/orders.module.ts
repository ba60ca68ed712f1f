import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module';
import { OrdersController, StatusController } from './orders.controller';

@Module({
  imports: [UsersModule],
  controllers: [OrdersController, StatusController],
})
export class OrdersModule {}
