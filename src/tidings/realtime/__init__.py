"""Live connections across instances, shared by the bff (which holds the sockets and writes their routes) and the
push job (which reads the routes and calls ``Deliver`` on the instance holding each one): the route table
(its model and port in ``model``, its adapters in ``routes``) and the delivery client (``delivery``)."""
