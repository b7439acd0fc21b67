import { Module } from '@nestjs/common';
import { MetricsController, MetricsTokenGuard } from './metrics.controller';
import { MetricsRepository } from './metrics.repository';
import { MetricsService } from './metrics.service';

@Module({
  controllers: [MetricsController],
  providers: [MetricsService, MetricsRepository, MetricsTokenGuard],
})
export class MetricsModule {}
