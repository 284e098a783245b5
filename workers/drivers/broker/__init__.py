"""Message broker drivers: per-node broker credentials (RabbitMQ through ``rabbitmqctl``)."""
