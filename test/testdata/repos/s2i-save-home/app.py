print("an app whose save-artifacts keeps all of $HOME")
