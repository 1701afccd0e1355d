# The pika tutorial's receive.py, stopping after one message and printing its bytes as hex.
import sys
import pika

connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
channel = connection.channel()
channel.queue_declare(queue='hello')
print("ready", flush=True)
for method, properties, body in channel.consume(queue='hello', auto_ack=True, inactivity_timeout=20):
    if method is None:
        sys.exit("no message within 20 s")
    print("received %s %s" % (body.hex(), properties.content_type), flush=True)
    break
connection.close()
