# The pika tutorial's send.py, with the broker URL from argv[1] and the body from argv[2].
import sys
import pika

connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
channel = connection.channel()
channel.queue_declare(queue='hello')
channel.basic_publish(exchange='', routing_key='hello', body=sys.argv[2].encode())
print(" [x] Sent %r" % sys.argv[2])
connection.close()
