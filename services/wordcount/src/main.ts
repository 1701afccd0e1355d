// Process entry point of the wordcount service.
import { main } from '@warren/service-kit';
import service from './service';

main(service);
