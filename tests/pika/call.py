# A plain pika RPC client: calls the `hello` queue over direct reply-to and prints the reply.
import sys
import pika

connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
channel = connection.channel()
reply = {}

def on_reply(ch, method, props, body):
    reply['body'] = body
    reply['status'] = (props.headers or {}).get('x-status')

channel.basic_consume(queue='amq.rabbitmq.reply-to', on_message_callback=on_reply, auto_ack=True)
channel.basic_publish(exchange='', routing_key='hello', body=sys.argv[2].encode(),
                      properties=pika.BasicProperties(reply_to='amq.rabbitmq.reply-to', correlation_id='c1'))
deadline = 100
while 'body' not in reply and deadline > 0:
    connection.process_data_events(time_limit=0.1)
    deadline -= 1
if 'body' not in reply:
    sys.exit("no reply")
print("reply %s status %s" % (reply['body'].decode(), reply['status']), flush=True)
connection.close()
