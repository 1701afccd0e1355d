// Process entry point of the template-service service.
import { main } from '@warren/service-kit';
import service from './service';

main(service);
