"""Customer bookings (预约): the form page, its signed links and slots, and `/book`."""
