// Process entry point of the echo service.
import { main } from '@warren/service-kit';
import service from './service';

main(service);
