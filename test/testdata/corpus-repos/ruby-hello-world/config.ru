run lambda { |env| [200, {"content-type" => "text/plain"}, ["Hello from ruby-hello-world\n"]] }
