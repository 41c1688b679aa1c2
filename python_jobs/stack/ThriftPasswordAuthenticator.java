package encore;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * The local Spark Thrift server's door (hive.server2.authentication=CUSTOM): one user name and password, both
 * from the server's environment (ENCORE_SPARK_THRIFT_USER, ENCORE_SPARK_THRIFT_PASSWORD), compared in constant
 * time. Without a password in the environment nobody gets in. Built by python_jobs/stack/thrift_auth.py.
 */
public final class ThriftPasswordAuthenticator implements PasswdAuthenticationProvider {
  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String expectedUser = System.getenv("ENCORE_SPARK_THRIFT_USER");
    String expectedPassword = System.getenv("ENCORE_SPARK_THRIFT_PASSWORD");
    if (expectedUser == null || expectedPassword == null || expectedPassword.isEmpty()) {
      throw new AuthenticationException("the Thrift server has no password set; nobody may connect");
    }
    boolean userMatches = same(user, expectedUser);
    boolean passwordMatches = same(password, expectedPassword);
    if (!(userMatches && passwordMatches)) {
      throw new AuthenticationException("wrong user name or password");
    }
  }

  private static boolean same(String given, String expected) {
    byte[] left = given == null ? new byte[0] : given.getBytes(StandardCharsets.UTF_8);
    return MessageDigest.isEqual(left, expected.getBytes(StandardCharsets.UTF_8));
  }
}
