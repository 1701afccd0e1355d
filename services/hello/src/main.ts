// Process entry point of the hello service.
import { main } from '@warren/service-kit';
import service from './service';

main(service);
